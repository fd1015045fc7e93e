"""The AMI frame codec: parsing, incremental decoding of a chunked byte stream, and safe action writing."""

from __future__ import annotations

import pytest

from capture_replay import captures_dir
from hotline.ami.frames import FrameDecoder, MalformedFrame, format_action, parse_frame

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
NAME = "Ștefan Țăranu-Şerbănescu"
NEWCALLERID = (
    "Event: NewCallerid\r\nPrivilege: call,all\r\nTimestamp: 1795618777.458405\r\n"
    "Channel: Local/5551000@hotline-inbound-000000ca;1\r\nCallerIDNum: 0712000002\r\n"
    f'CallerIDName: {NAME}\r\nAppData: hotline line 1 from "{NAME}" <0712000002>: ok\r\n'
    "PausedReason: \r\nLinkedid: 1795618777.420\r\n\r\n"
)
EXPECTED = {
    "Event": "NewCallerid",
    "Privilege": "call,all",
    "Timestamp": "1795618777.458405",
    "Channel": "Local/5551000@hotline-inbound-000000ca;1",
    "CallerIDNum": "0712000002",
    "CallerIDName": NAME,
    "AppData": f'hotline line 1 from "{NAME}" <0712000002>: ok',
    "PausedReason": "",
    "Linkedid": "1795618777.420",
}


def test_parse_frame_splits_on_the_first_separator_and_keeps_empty_values() -> None:
    assert parse_frame(NEWCALLERID) == EXPECTED


def test_parse_frame_tolerates_lines_without_separator() -> None:
    frame = parse_frame("Response: Success\r\nEmpty:\r\nodd line\r\nMessage: a: b\r\n")
    assert frame == {"Response": "Success", "Empty": "", "odd line": "", "Message": "a: b"}


def test_parse_frame_keeps_repeated_keys() -> None:
    frame = parse_frame("Response: Success\r\nOutput: line 1\r\nOutput: line 2\r\n\r\n")
    assert frame["Output"] == "line 1\nline 2"


def test_parse_frame_without_event_or_response_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        parse_frame("Channel: PJSIP/x\r\nUniqueid: 1.2\r\n\r\n")
    assert issubclass(MalformedFrame, ValueError)


def test_split_at_every_byte_gives_the_same_frames() -> None:
    """Reads end anywhere, including inside the two bytes of Ș or Ț: the character must survive."""
    stream = BANNER + NEWCALLERID.encode("utf-8") + b"Response: Pong\r\nActionID: 7\r\n\r\n"
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert frames == [EXPECTED, {"Response": "Pong", "ActionID": "7"}], cut
        assert decoder.banner == "Asterisk Call Manager/11.0.0"
        assert decoder.malformed == 0 and decoder.oversize == 0


def test_byte_at_a_time_and_three_way_splits() -> None:
    stream = BANNER + NEWCALLERID.encode("utf-8") * 3
    decoder = FrameDecoder()
    frames = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert frames == [EXPECTED] * 3
    name = NAME.encode("utf-8")
    for i in range(1, len(name)):
        for j in range(i, len(name)):
            decoder = FrameDecoder()
            data = b"Event: X\r\nName: " + name + b"\r\n\r\n"
            start = data.index(name)
            parts = [data[: start + i], data[start + i : start + j], data[start + j :]]
            assert [f for p in parts for f in decoder.feed(p)] == [{"Event": "X", "Name": NAME}]


def test_no_banner_is_fine() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"Response: Success\r\n\r\n") == [{"Response": "Success"}]
    assert decoder.banner is None


def test_noise_and_frames_without_event_are_skipped_and_counted() -> None:
    decoder = FrameDecoder()
    noise = b"\x00\xff\xfe\x80garbage\r\n\r\n" + b"Channel: x\r\nUniqueid: 1\r\n\r\n"
    frames = decoder.feed(BANNER + noise + b"Event: Ok\r\n\r\n" + b"\xc3\r\n\r\n")
    assert frames == [{"Event": "Ok"}]
    assert decoder.malformed == 3


def test_invalid_utf8_becomes_replacement_characters() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"Event: X\r\nName: a\xffb\r\n\r\n") == [{"Event": "X", "Name": "a\ufffdb"}]


def test_oversize_complete_frame_is_skipped() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    big = b"Event: Big\r\nData: " + b"x" * 2000 + b"\r\n\r\n"
    assert decoder.feed(big + b"Event: Small\r\n\r\n") == [{"Event": "Small"}]
    assert decoder.oversize == 1


def test_runaway_line_without_terminator_is_not_buffered_forever() -> None:
    """1 MB of one header line, fed in 4 KiB reads: memory stays bounded; the frame after it still arrives."""
    decoder = FrameDecoder(max_frame_bytes=64 * 1024)
    decoder.feed(BANNER + b"Event: Huge\r\nData: ")
    chunk = b"y" * 4096
    for _ in range(256):
        assert decoder.feed(chunk) == []
        assert len(decoder._buf) <= 64 * 1024 + 4096
    # The terminator itself split across reads.
    assert decoder.feed(b"\r\n\r") == []
    assert decoder.feed(b"\nEvent: After\r\n\r\n") == [{"Event": "After"}]
    assert decoder.oversize == 1
    assert decoder.malformed == 0


def test_bare_newlines_do_not_crash() -> None:
    decoder = FrameDecoder(max_frame_bytes=64)
    for _ in range(100):
        assert decoder.feed(b"Event: X\nKey: v\n\n") == []
    assert decoder.oversize >= 1
    assert decoder.feed(b"\r\n\r\nEvent: Y\r\n\r\n")[-1] == {"Event": "Y"}


def test_format_action_writes_crlf_lines_and_a_blank_line() -> None:
    data = format_action({"Action": "QueuePause", "Interface": "Local/101@phones/n", "Reason": "prânz"})
    assert data == "Action: QueuePause\r\nInterface: Local/101@phones/n\r\nReason: prânz\r\n\r\n".encode()
    assert parse_frame("Response: x\r\n" + data.decode()) == {
        "Response": "x",
        "Action": "QueuePause",
        "Interface": "Local/101@phones/n",
        "Reason": "prânz",
    }


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "QueuePause", "Reason": "lunch\r\nAction: Command"},
        {"Action": "Ping\n"},
        {"Action": "Ping", "Bad\rKey": "v"},
        {"Action": "Ping", "Bad: Key": "v"},
        {"Action": "Ping", "": "v"},
    ],
)
def test_format_action_refuses_injection(action: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        format_action(action)


@pytest.mark.skipif(not captures_dir().is_dir(), reason="no shared AMI captures")
def test_a_whole_capture_fed_in_odd_chunks_decodes_to_its_frames() -> None:
    import json

    rows = [json.loads(line) for line in (captures_dir() / "answered_operator_hangs_up.jsonl").open(encoding="utf-8")]
    recv = [r["data"] for r in rows if r["dir"] == "recv"]
    stream = "".join(recv).encode("utf-8")
    decoder = FrameDecoder()
    frames: list[dict[str, str]] = []
    sizes = [1, 2, 3, 5, 7, 11, 13, 17, 64, 1000]
    pos = i = 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        frames += decoder.feed(stream[pos : pos + size])
        pos, i = pos + size, i + 1
    assert frames == [parse_frame(data) for data in recv[1:]]
    assert decoder.banner == recv[0].rstrip("\r\n")
    assert any(f.get("CallerIDName") == NAME for f in frames)
