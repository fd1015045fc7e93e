"""The PBX simulator: queue state like Asterisk's, AstDB, and scripted calls with the captures' event shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hotline.ami.server import parse_action
from hotline.ami.simulator import PbxSimulator, run_simulator
from replay import RawAmiClient

ANA = "Local/101@phones/n"
MIHAI = "Local/102@phones/n"


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(speed=50.0, seed=1, overflow={3: "0219990000"}, max_channels={2: 1})
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: PbxSimulator) -> AsyncIterator[RawAmiClient]:
    assert sim.port is not None
    ami = await RawAmiClient.connect(sim.port)
    assert (await ami.login())["Response"] == "Success"
    yield ami
    await ami.close()


async def _ask(client: RawAmiClient, action: str, **headers: str) -> dict[str, str]:
    action_id = await client.send(action, **headers)
    return await client.wait_for(lambda f: f.get("ActionID") == action_id and "Response" in f)


async def _list(client: RawAmiClient, action: str, complete: str, **headers: str) -> list[dict[str, str]]:
    action_id = await client.send(action, **headers)
    start = len(client.frames)
    await client.wait_for(lambda f: f.get("Event") == complete and f.get("ActionID") == action_id)
    frames = [parse_action(t.removesuffix("\r\n\r\n")) for t in client.frames[start:]]
    return [f for f in frames if f.get("ActionID") == action_id]


async def _events_until_now(client: RawAmiClient) -> list[dict[str, str]]:
    """Everything received so far: a Ping's response comes after every event written before it."""
    await _ask(client, "Ping")
    return [parse_action(t.removesuffix("\r\n\r\n")) for t in client.frames]


async def test_fully_booted_after_login(client: RawAmiClient) -> None:
    frame = await client.wait_for(lambda f: "Event" in f)
    assert frame["Event"] == "FullyBooted"


async def test_queue_add_twice_and_unknown_queue(sim: PbxSimulator, client: RawAmiClient) -> None:
    ok = await _ask(client, "QueueAdd", Queue="hotline-1", Interface=ANA, MemberName="ana", Penalty="1")
    assert ok["Message"] == "Added interface to queue"
    added = await client.wait_for(lambda f: f.get("Event") == "QueueMemberAdded")
    assert (added["MemberName"], added["Interface"], added["Penalty"], added["Paused"]) == ("ana", ANA, "1", "0")
    again = await _ask(client, "QueueAdd", Queue="hotline-1", Interface=ANA, MemberName="ana")
    assert (again["Response"], again["Message"]) == ("Error", "Unable to add interface: Already there")
    nowhere = await _ask(client, "QueueAdd", Queue="no-such-queue", Interface=ANA)
    assert nowhere["Message"] == "Unable to add interface to queue: No such queue"
    assert [m["name"] for m in sim.members("hotline-1")] == ["ana"]
    assert [a["Action"] for a in sim.actions_received] == ["QueueAdd"] * 3


async def test_pause_with_reason_shows_in_queue_status(sim: PbxSimulator, client: RawAmiClient) -> None:
    await _ask(client, "QueueAdd", Queue="hotline-1", Interface=ANA, MemberName="ana")
    paused = await _ask(client, "QueuePause", Queue="hotline-1", Interface=ANA, Paused="true", Reason="lunch")
    assert paused["Message"] == "Interface paused successfully"
    event = await client.wait_for(lambda f: f.get("Event") == "QueueMemberPause")
    assert (event["Paused"], event["PausedReason"]) == ("1", "lunch")
    status = await _list(client, "QueueStatus", "QueueStatusComplete", Queue="hotline-1")
    assert status[0]["Message"] == "Queue status will follow"
    assert [f.get("Event") for f in status[1:]] == ["QueueParams", "QueueMember", "QueueStatusComplete"]
    member = status[2]
    assert (member["Name"], member["Location"], member["Paused"], member["PausedReason"]) == ("ana", ANA, "1", "lunch")
    assert (member["InCall"], member["Status"]) == ("0", "1")
    assert status[-1]["ListItems"] == "2"
    unpaused = await _ask(client, "QueuePause", Queue="hotline-1", Interface=ANA, Paused="false")
    assert unpaused["Message"] == "Interface unpaused successfully"
    assert sim.members("hotline-1")[0]["paused"] is False
    assert sim.members("hotline-1")[0]["paused_reason"] == ""


async def test_queue_remove_and_summary(sim: PbxSimulator, client: RawAmiClient) -> None:
    await _ask(client, "QueueAdd", Queue="hotline-2", Interface=MIHAI, MemberName="mihai")
    summary = await _list(client, "QueueSummary", "QueueSummaryComplete", Queue="hotline-2")
    assert (summary[1]["LoggedIn"], summary[1]["Available"], summary[1]["Callers"]) == ("1", "1", "0")
    removed = await _ask(client, "QueueRemove", Queue="hotline-2", Interface=MIHAI)
    assert removed["Message"] == "Removed interface from queue"
    assert (await client.wait_for(lambda f: f.get("Event") == "QueueMemberRemoved"))["MemberName"] == "mihai"
    again = await _ask(client, "QueueRemove", Queue="hotline-2", Interface=MIHAI)
    assert again["Message"] == "Unable to remove interface: Not there"
    assert sim.members("hotline-2") == []


async def test_dbput_dbget(sim: PbxSimulator, client: RawAmiClient) -> None:
    put = await _ask(client, "DBPut", Family="hotline/open", Key="1", Val="0")
    assert put["Message"] == "Updated database successfully"
    assert sim.astdb == {"hotline/open/1": "0"}
    got = await _list(client, "DBGet", "DBGetComplete", Family="hotline/open", Key="1")
    assert got[1]["Event"] == "DBGetResponse" and got[1]["Val"] == "0"
    missing = await _ask(client, "DBGet", Family="hotline/open", Key="999")
    assert (missing["Response"], missing["Message"]) == ("Error", "Database entry not found")


async def test_commands_and_unknown_action(client: RawAmiClient) -> None:
    reload = await _ask(client, "Command", Command="dialplan reload")
    assert (reload["Response"], reload["Output"]) == ("Success", "Dialplan reloaded.")
    module = await _ask(client, "Command", Command="module reload app_queue.so")
    assert module["Output"] == "Module 'app_queue.so' reloaded successfully."
    unknown = await _ask(client, "NoSuchAction")
    assert unknown["Message"].startswith("Invalid/unknown command: NoSuchAction.")
    redirect = await _ask(client, "Redirect", Channel="Local/nothing@nowhere-00000000;1", Exten="201")
    assert redirect["Message"] == "Channel does not exist: Local/nothing@nowhere-00000000;1"


async def test_scripted_answered_call(sim: PbxSimulator, client: RawAmiClient) -> None:
    await _ask(client, "QueueAdd", Queue="hotline-1", Interface=ANA, MemberName="ana")
    call = sim.place_call("5551000", "0712000002", "Ștefan Țăranu-Şerbănescu", answer_after=2, talk=10)
    await asyncio.sleep(4 / sim.speed)
    channels = await _list(client, "CoreShowChannels", "CoreShowChannelsComplete")
    listed = [c for c in channels if c.get("Event") == "CoreShowChannel"]
    assert {c["Channel"] for c in listed if c["Uniqueid"] == call.linkedid} == {
        "Local/5551000@hotline-inbound-00000001;1"
    }
    assert all(c["Linkedid"] == call.linkedid and c["Duration"].startswith("00:00:") for c in listed)
    assert await asyncio.wait_for(call.outcome, 5) == "answered"
    events = [e for e in await _events_until_now(client) if e.get("Linkedid") == call.linkedid and "ActionID" not in e]
    names = [e["Event"] for e in events]
    assert names[:2] == ["Newchannel", "Newchannel"]
    assert events[0]["Channel"].endswith(";1") and events[0]["CallerIDNum"] == "<unknown>"
    assert events[0]["Exten"] == "5551000" and events[0]["Uniqueid"] == call.linkedid
    assert names.index("NewCallerid") < names.index("UserEvent") < names.index("QueueCallerJoin")
    assert names.index("AgentCalled") < names.index("AgentConnect") < names.index("AgentComplete")
    assert names[-1] == "Hangup"
    caller_id = next(e for e in events if e["Event"] == "NewCallerid")
    assert (caller_id["CallerIDNum"], caller_id["CallerIDName"]) == ("0712000002", "Ștefan Țăranu-Şerbănescu")
    route = next(e for e in events if e["Event"] == "UserEvent")
    assert (route["UserEvent"], route["Line"], route["Route"]) == ("HotlineRoute", "1", "queue")
    connect = next(e for e in events if e["Event"] == "AgentConnect")
    complete = next(e for e in events if e["Event"] == "AgentComplete")
    assert connect["MemberName"] == complete["MemberName"] == "ana"
    assert connect["Interface"] == ANA and int(connect["HoldTime"]) in (1, 2, 3)
    assert int(complete["TalkTime"]) in (9, 10, 11) and complete["Reason"] == "caller"
    assert all("Timestamp" in e for e in events)
    assert sum(e["Event"] == "Hangup" for e in events) == 4
    assert call.operator == "ana" and call.rang == ["ana"]
    assert sim.members("hotline-1")[0]["calls_taken"] == 1
    assert not sim.channels


async def test_paused_member_gets_no_call_and_caller_abandons(sim: PbxSimulator, client: RawAmiClient) -> None:
    await _ask(client, "QueueAdd", Queue="hotline-1", Interface=ANA, MemberName="ana")
    await _ask(client, "QueuePause", Queue="hotline-1", Interface=ANA, Paused="true", Reason="lunch")
    call = sim.place_call("5551000", "0712000003", "Dan Georgescu", answer_after=1, talk=5, patience=5)
    assert await asyncio.wait_for(call.outcome, 5) == "abandoned"
    events = [e for e in await _events_until_now(client) if e.get("Linkedid") == call.linkedid]
    names = [e["Event"] for e in events]
    assert "AgentCalled" not in names
    abandon = next(e for e in events if e["Event"] == "QueueCallerAbandon")
    assert abandon["Queue"] == "hotline-1" and int(abandon["HoldTime"]) in (4, 5, 6)


async def test_ring_no_answer_moves_to_next_member(sim: PbxSimulator, client: RawAmiClient) -> None:
    sim.ring_timeout = 2.0
    await _ask(client, "QueueAdd", Queue="hotline-1", Interface=ANA, MemberName="ana")
    await _ask(client, "QueueAdd", Queue="hotline-1", Interface=MIHAI, MemberName="mihai")
    call = sim.place_call("5551000", "0712000005", "Radu Munteanu", answer_after=None, talk=3, patience=5)
    assert await asyncio.wait_for(call.outcome, 5) == "abandoned"
    events = [e for e in await _events_until_now(client) if e.get("Linkedid") == call.linkedid]
    assert [e["MemberName"] for e in events if e["Event"] == "AgentRingNoAnswer"][:2] == ["ana", "mihai"]


async def test_closed_line(sim: PbxSimulator, client: RawAmiClient) -> None:
    await _ask(client, "DBPut", Family="hotline/open", Key="1", Val="0")
    call = sim.place_call("5551000", "0712000004", "Elena Stan")
    assert await asyncio.wait_for(call.outcome, 5) == "closed"
    events = [e for e in await _events_until_now(client) if e.get("Linkedid") == call.linkedid]
    assert next(e for e in events if e["Event"] == "UserEvent")["Route"] == "closed"
    assert "QueueCallerJoin" not in [e["Event"] for e in events]


async def test_timeout_overflow_and_busy(sim: PbxSimulator, client: RawAmiClient) -> None:
    overflow = sim.place_call("5553000", "0712000007", "Vlad Rusu", talk=2)
    first = sim.place_call("5552000", "0712000011", "Caller 1", patience=3)
    busy = sim.place_call("5552000", "0712000012", "Caller 2")
    assert await asyncio.wait_for(busy.outcome, 5) == "busy"
    assert await asyncio.wait_for(first.outcome, 5) == "abandoned"
    assert await asyncio.wait_for(overflow.outcome, 5) == "overflow"
    events = await _events_until_now(client)
    routes = [e for e in events if e.get("UserEvent") == "HotlineRoute" and e["Linkedid"] == overflow.linkedid]
    assert [r["Route"] for r in routes] == ["queue", "overflow"] and routes[1]["Target"] == "0219990000"
    abandon = next(e for e in events if e.get("Event") == "QueueCallerAbandon" and e["Linkedid"] == overflow.linkedid)
    assert abandon["HoldTime"] in ("20", "21")
    busy_route = next(e for e in events if e.get("UserEvent") == "HotlineRoute" and e["Linkedid"] == busy.linkedid)
    assert busy_route["Route"] == "busy"


async def test_run_simulator_generates_traffic() -> None:
    stop = asyncio.Event()
    runner = asyncio.create_task(
        run_simulator("127.0.0.1", 0, username="u", secret="s", calls_per_hour=3600 * 20, seed=4, stop=stop, speed=20)
    )
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(runner, 5)
