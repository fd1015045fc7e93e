"""The replay server: recorded Asterisk sessions played back through a socket, chunked, cut and resumed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable

import pytest

from hotline.ami.server import parse_action
from replay import (
    RawAmiClient,
    ReplayServer,
    core_show_channels_answer,
    load_capture,
    pbx_state_at,
    queue_status_answer,
    reference_answer,
)

NAME = "answered_operator_hangs_up"
DIACRITICS = "Ștefan Țăranu-Şerbănescu"

ServerFactory = Callable[..., ReplayServer]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    servers: list[ReplayServer] = []

    def factory(*args: object, **kwargs: object) -> ReplayServer:
        srv = ReplayServer(*args, **kwargs)  # type: ignore[arg-type]
        servers.append(srv)
        return srv

    yield factory
    for srv in servers:
        await srv.stop()


async def _connect(server: ReplayServer) -> RawAmiClient:
    port = server.port if server.port is not None else await server.start()
    client = await RawAmiClient.connect(port)
    login = await client.login()
    assert login["Response"] == "Success"
    return client


def _recorded(name: str) -> list[str]:
    return [f.data for f in load_capture(name).frames]


async def test_full_replay_chunked_is_byte_identical(make_server: ServerFactory) -> None:
    server = make_server(NAME, chunking=(1, 13), seed=5)
    client = await _connect(server)
    expected = _recorded(NAME)
    received = [await client.read_frame() for _ in expected]
    assert received == expected
    assert any(DIACRITICS in frame for frame in received if frame)
    await asyncio.wait_for(server.finished.wait(), 5)
    assert server.events_written == len(expected)
    assert client.reads > len(expected)  # frames really arrived in pieces
    await client.send("Logoff")
    assert (await client.read_until_eof())[-1].startswith("Response: Goodbye")


async def test_banner_and_recorded_login_response_are_not_replayed(make_server: ServerFactory) -> None:
    capture = load_capture(NAME)
    assert capture.login_accepted and capture.ends_with_logoff
    assert not any(f.data.startswith("Asterisk Call Manager") for f in capture.frames)
    assert not any("Authentication accepted" in f.data for f in capture.frames)
    assert capture.frames[0].data.startswith("Event: FullyBooted")


async def test_login_failed_capture_refuses(make_server: ServerFactory) -> None:
    server = make_server("login_failed")
    port = await server.start()
    client = await RawAmiClient.connect(port)
    await client.send("Login", Username="hotline", Secret="hotline-secret", ActionID="x1")
    frames = await client.read_until_eof(within=5)
    assert frames == ["Response: Error\r\nActionID: x1\r\nMessage: Authentication failed\r\n\r\n"]


async def test_wrong_secret_is_refused(make_server: ServerFactory) -> None:
    server = make_server(NAME, secret="s3cret")
    port = await server.start()
    client = await RawAmiClient.connect(port)
    frame = await client.login(secret="hotline-secret")
    assert frame["Message"] == "Authentication failed"
    assert server.events_written == 0


async def test_part1_then_part2_rewrites_action_ids(make_server: ServerFactory) -> None:
    server = make_server(["reconnect_mid_call.part1", "reconnect_mid_call.part2"], chunking=(1, 50), seed=2)
    first = await _connect(server)
    part1 = await first.read_until_eof(within=10)
    assert part1 == _recorded("reconnect_mid_call.part1")  # then the connection drops, no Goodbye

    second = await _connect(server)
    channels_id = await second.send("CoreShowChannels", ActionID="resync-1")
    queues_id = await second.send("QueueStatus", ActionID="resync-2")
    await asyncio.wait_for(server.finished.wait(), 10)
    await second.send("Logoff", ActionID="bye")
    frames = await second.read_until_eof(within=10)
    assert frames[-1].startswith("Response: Goodbye\r\nActionID: bye")
    frames = frames[:-1]
    recorded = _recorded("reconnect_mid_call.part2")
    assert len(frames) == len(recorded)
    for got, want in zip(frames, recorded, strict=True):
        if "ActionID: hotline-357" in want:
            assert got == want.replace("hotline-357", channels_id)
        elif "ActionID: hotline-358" in want:
            assert got == want.replace("hotline-358", queues_id)
        else:
            assert got == want
    assert sum(f"ActionID: {channels_id}\r\n" in f for f in frames) == 10  # response + 8 channels + complete
    assert server.groups_skipped == 0


async def test_response_group_skipped_when_client_never_asks(make_server: ServerFactory) -> None:
    server = make_server("reconnect_mid_call.part2", action_wait=0.05)
    client = await _connect(server)
    await asyncio.wait_for(server.finished.wait(), 5)
    await client.send("Logoff")
    frames = (await client.read_until_eof())[:-1]
    assert server.groups_skipped == 2
    assert not any("ActionID" in f for f in frames)
    assert len(frames) == len([f for f in load_capture("reconnect_mid_call.part2").frames if f.group is None])


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_drop_at_random_frame_and_resume(make_server: ServerFactory, seed: int) -> None:
    expected = _recorded("answered_caller_hangs_up")
    cut = random.Random(seed).randrange(len(expected) - 1)
    server = make_server("answered_caller_hangs_up", drop_at_frame=cut, chunking=(1, 64), seed=seed)
    first = await _connect(server)
    before = await first.read_until_eof(within=10)
    assert before == expected[: cut + 1]
    assert server.resume_from == cut + 1

    second = await _connect(server)
    after = [await second.read_frame() for _ in expected[cut + 1 :]]
    assert before + after == expected
    await asyncio.wait_for(server.finished.wait(), 5)
    assert server.events_written == len(expected)
    await second.close()


async def test_resume_from_explicit_index(make_server: ServerFactory) -> None:
    expected = _recorded("closed_out_of_hours")
    server = make_server("closed_out_of_hours", resume_from=10)
    client = await _connect(server)
    got = [await client.read_frame() for _ in expected[10:]]
    assert got == expected[10:]
    await client.close()


async def test_actions_outside_the_capture_use_the_reference(make_server: ServerFactory) -> None:
    server = make_server("closed_out_of_hours")
    client = await _connect(server)
    await asyncio.wait_for(server.finished.wait(), 5)
    missing = await client.send("DBGet", Family="hotline/open", Key="999")
    frame = await client.wait_for(lambda f: f.get("ActionID") == missing)
    assert (frame["Response"], frame["Message"]) == ("Error", "Database entry not found")
    found = await client.send("DBGet", Family="hotline/open", Key="1")
    frame = await client.wait_for(lambda f: f.get("ActionID") == found and f.get("Event") == "DBGetComplete")
    assert frame["ListItems"] == "1"
    unknown = await client.send("FooBar")
    frame = await client.wait_for(lambda f: f.get("ActionID") == unknown)
    assert frame["Message"].startswith("Invalid/unknown command: FooBar.")
    await client.close()


def test_reference_answer_matches_key_fields() -> None:
    frames = reference_answer({"Action": "QueueAdd", "Queue": "no-such-queue", "Interface": "Local/101@phones/n"})
    assert frames == ["Response: Error\r\nMessage: Unable to add interface to queue: No such queue\r\n\r\n"]
    frames = reference_answer({"Action": "Command", "Command": "dialplan reload", "ActionID": "c1"})
    assert frames is not None and "Output: Dialplan reloaded." in frames[0] and "ActionID: c1" in frames[0]
    assert reference_answer({"Action": "NotRecorded"}) is None


async def test_pacing_follows_recorded_times(make_server: ServerFactory) -> None:
    capture = load_capture("closed_out_of_hours")
    span = capture.frames[-1].t - capture.frames[0].t
    scale = 0.3 / span
    server = make_server("closed_out_of_hours", scale=scale)
    client = await _connect(server)
    started = time.monotonic()
    await asyncio.wait_for(server.finished.wait(), 5)
    assert time.monotonic() - started >= span * scale * 0.8
    await client.close()


async def test_inject_garbage_reaches_the_client(make_server: ServerFactory) -> None:
    server = make_server("closed_out_of_hours", action_wait=0.01)
    client = await _connect(server)
    await asyncio.wait_for(server.finished.wait(), 5)
    big = b"X-Huge: " + b"a" * (1 << 20) + b"\r\n\r\n"
    await server.inject(b"\x00\xff\xfe binary noise\r\n\r\n" + big)
    # Drain what was replayed, then find the injected frames.
    frames: list[str] = []
    while not any(f.startswith("X-Huge") for f in frames):
        text = await client.read_frame()
        assert text is not None
        frames.append(text)
    assert len(frames[-1]) == (1 << 20) + 12
    await client.close()


# -- resync answers built from the capture when it recorded none ------------------------------------------------------


def _live_linkedids(frames: list[str]) -> set[str]:
    """Linkedids of the channels created and not yet hung up in ``frames`` (Uniqueid -> Linkedid, the dumb way)."""
    live: dict[str, str] = {}
    for text in frames:
        headers = dict(line.split(": ", 1) for line in text.strip().split("\r\n") if ": " in line)
        if headers.get("Event") == "Newchannel":
            live[headers["Uniqueid"]] = headers["Linkedid"]
        elif headers.get("Event") == "Hangup":
            live.pop(headers["Uniqueid"], None)
    return set(live.values())


async def _list_answer(client: RawAmiClient, action_id: str, complete: str) -> tuple[int, list[dict[str, str]]]:
    """Read up to the end of ``action_id``'s EventList: (replayed frames read before its Response, its frames).

    The answer must come in one piece: no replayed frame between its Response and its ``complete`` event.
    """
    before = 0
    answer: list[dict[str, str]] = []
    while True:
        text = await client.read_frame()
        assert text is not None
        frame = dict(line.split(": ", 1) for line in text.removesuffix("\r\n\r\n").split("\r\n"))
        if frame.get("ActionID") != action_id:
            assert not answer, f"replayed frame inside the answer: {text!r}"
            before += 1
            continue
        answer.append(frame)
        if frame.get("Event") == complete:
            return before, answer


LOAD = "load_40_calls"
CHANNEL_KEYS = [
    "Event", "ActionID", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid",
    "Linkedid", "Application", "ApplicationData", "Duration", "BridgeId",
]  # fmt: skip


def _cut(recorded: list[str], fraction: float) -> int:
    return min(int(len(recorded) * fraction), len(recorded) - 1)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0])
async def test_core_show_channels_after_resume_lists_the_live_calls(
    make_server: ServerFactory, fraction: float
) -> None:
    recorded = _recorded(LOAD)
    cut = _cut(recorded, fraction)  # 1.0: after the last frame, when the next login finds no capture left
    server = make_server(LOAD, drop_at_frame=cut, chunking=(1, 300), seed=cut)
    first = await _connect(server)
    assert await first.read_until_eof(within=20) == recorded[: cut + 1]

    second = await _connect(server)
    action_id = await second.send("CoreShowChannels", ActionID="resync-channels")
    before, answer = await _list_answer(second, action_id, "CoreShowChannelsComplete")
    position = cut + 1 + before  # the answer describes the PBX after these frames, and came right after them

    assert answer[0] == {
        "Response": "Success",
        "ActionID": action_id,
        "EventList": "start",
        "Message": "Channels will follow",
    }
    items = answer[1:-1]
    assert answer[-1] == {
        "Event": "CoreShowChannelsComplete",
        "ActionID": action_id,
        "EventList": "Complete",
        "ListItems": str(len(items)),
    }
    for item in items:
        assert list(item) == CHANNEL_KEYS
        hours, minutes, seconds = item["Duration"].split(":")
        assert len(hours) == len(minutes) == len(seconds) == 2 and int(minutes) < 60 and int(seconds) < 60
        assert not item["CallerIDNum"].startswith("<") or item["Channel"].startswith("Local/")
    assert len({item["Uniqueid"] for item in items}) == len(items)
    assert {item["Linkedid"] for item in items} == _live_linkedids(recorded[:position])
    await second.close()


async def test_resume_points_cover_busy_and_idle_moments() -> None:
    """The cuts above are worth something: some fall during calls, and the last one after every call ended."""
    recorded = _recorded(LOAD)
    sizes = [len(_live_linkedids(recorded[: _cut(recorded, f) + 1])) for f in (0.2, 0.35, 0.5, 0.65, 1.0)]
    assert max(sizes) >= 3
    assert sizes[-1] == 0


def test_core_show_channels_fields_follow_the_capture() -> None:
    """A caller's channel in the queue: caller ID from NewCallerid, dialplan position from Newexten, its bridge."""
    capture = load_capture(LOAD)
    # Just after the first caller entered the bridge with ana (while in Queue()).
    position = 1 + next(
        i
        for i, f in enumerate(capture.frames)
        if f.data.startswith("Event: BridgeEnter") and "Channel: Local/5551000@hotline-inbound-00000089;2" in f.data
    )
    answer = [parse_action(f) for f in core_show_channels_answer(pbx_state_at(capture, position), "x")]
    by_channel = {item["Channel"]: item for item in answer[1:-1]}
    caller = by_channel["Local/5551000@hotline-inbound-00000089;2"]
    assert (caller["CallerIDNum"], caller["CallerIDName"]) == ("0733000000", "Load 0")
    assert (caller["Context"], caller["Exten"], caller["Application"], caller["ApplicationData"]) == (
        "hotline-line",
        "s",
        "Queue",
        "hotline-1,,,,20",
    )
    assert (caller["ChannelState"], caller["ChannelStateDesc"]) == ("6", "Up")
    operator = by_channel["Local/101@phones-0000008a;1"]
    assert caller["BridgeId"] and operator["BridgeId"] == caller["BridgeId"]
    assert caller["Linkedid"] == operator["Linkedid"] == "1795618636.274"
    assert caller["Duration"] == "00:00:01"
    assert answer[-1]["ListItems"] == str(len(answer) - 2)


def test_queue_status_counts_waiting_callers() -> None:
    capture = load_capture(LOAD)
    position = 1 + next(i for i, f in enumerate(capture.frames) if f.data.startswith("Event: QueueCallerJoin"))
    answer = [parse_action(f) for f in queue_status_answer(pbx_state_at(capture, position), "q", "hotline-1")]
    params = [f for f in answer if f.get("Event") == "QueueParams"]
    assert [(p["Queue"], p["Calls"]) for p in params] == [("hotline-1", "1")]
    (entry,) = [f for f in answer if f.get("Event") == "QueueEntry"]
    assert (entry["Position"], entry["CallerIDNum"], entry["Uniqueid"]) == ("1", "0733000000", "1795618636.275")
    assert {f["Location"] for f in answer if f.get("Event") == "QueueMember"} == {
        "Local/101@phones/n",
        "Local/103@phones/n",
        "Local/104@phones/n",
    }


async def test_queue_status_after_resume_lists_members(make_server: ServerFactory) -> None:
    recorded = _recorded("operator_pause_cycle")
    cut = next(i for i, f in enumerate(recorded) if "PausedReason: lunch" in f)
    server = make_server("operator_pause_cycle", drop_at_frame=cut)
    first = await _connect(server)
    await first.read_until_eof(within=10)
    second = await _connect(server)
    action_id = await second.send("QueueStatus")
    before, answer = await _list_answer(second, action_id, "QueueStatusComplete")
    assert answer[0]["Message"] == "Queue status will follow"
    assert answer[-1]["ListItems"] == str(len(answer) - 2)
    # Independently: the last QueueMember* event of each (queue, interface) before the answer, minus removals.
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for text in recorded[: cut + 1 + before]:
        headers = dict(line.split(": ", 1) for line in text.strip().split("\r\n") if ": " in line)
        if headers.get("Event", "").startswith("QueueMember"):
            key = (headers["Queue"], headers["Interface"])
            if headers["Event"] == "QueueMemberRemoved":
                latest.pop(key, None)
            else:
                latest[key] = headers
    members = {(f["Queue"], f["Location"]): f for f in answer if f.get("Event") == "QueueMember"}
    assert set(members) == set(latest)
    for key, member in members.items():
        assert (member["Name"], member["Paused"], member["PausedReason"]) == (
            latest[key]["MemberName"],
            latest[key]["Paused"],
            latest[key]["PausedReason"],
        )
    assert {f["Queue"] for f in answer if f.get("Event") == "QueueParams"} >= {q for q, _ in members}
    await second.close()


async def test_recorded_resync_answer_wins_then_later_asks_are_synthesized(make_server: ServerFactory) -> None:
    server = make_server("reconnect_mid_call.part2", action_wait=0.2)  # QueueStatus is never asked
    client = await _connect(server)
    first = await client.send("CoreShowChannels")
    _, recorded_answer = await _list_answer(client, first, "CoreShowChannelsComplete")
    assert recorded_answer[-1]["ListItems"] == "8"  # the recorded group, as Asterisk sent it
    await asyncio.wait_for(server.finished.wait(), 5)
    again = await client.send("CoreShowChannels")
    _, later = await _list_answer(client, again, "CoreShowChannelsComplete")
    # Both calls of the capture ended by then; the reference data (another run's channels) must not show up.
    assert later[-1] == {
        "Event": "CoreShowChannelsComplete",
        "ActionID": again,
        "EventList": "Complete",
        "ListItems": "0",
    }
    await client.close()


async def test_reference_channels_never_answer_a_replay(make_server: ServerFactory) -> None:
    reference = reference_answer({"Action": "CoreShowChannels"})
    assert reference is not None
    reference_ids = {line for frame in reference for line in frame.split("\r\n") if line.startswith("Linkedid:")}
    server = make_server("closed_out_of_hours", resume_from=5)
    client = await _connect(server)
    action_id = await client.send("CoreShowChannels")
    _, answer = await _list_answer(client, action_id, "CoreShowChannelsComplete")
    assert not {f"Linkedid: {f['Linkedid']}" for f in answer if "Linkedid" in f} & reference_ids
    await client.close()
