"""Resync time: a listener connects to a PBX with 1,000 live channels (500 calls, each a Local channel pair on a
line number, half of them talking to an operator) it has never seen; time from login to the moment all 500 calls
are committed.

Run: ``python -m bench.resync [--channels 1000] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.ingest import _parse_actions, prepare_db
from bench.pg import default_url
from hotline.db.engine import make_engine, make_session_factory
from hotline.services.call_listener import CallListener
from hotline.settings import PbxSettings


def snapshot(action_id: str, channels: int) -> bytes:
    """What Asterisk answers to CoreShowChannels with ``channels`` channels (shape of reconnect_mid_call.part2)."""
    frames = [
        f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n"
    ]
    for i in range(channels // 2):
        linkedid = f"1795600000.{2 * i}"
        number = ("5551000", "5552000")[i % 2]
        talking = i % 2 == 0
        for side, uniqueid, context, exten, app in (
            ("1", linkedid, "hotline-inbound", number, "Wait"),
            ("2", f"1795600000.{2 * i + 1}", "hotline-line", "s", "Queue"),
        ):
            frames.append(
                f"Event: CoreShowChannel\r\nActionID: {action_id}\r\n"
                f"Channel: Local/{number}@hotline-inbound-{i:08x};{side}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n"
                f"CallerIDNum: 07{i:08d}\r\nCallerIDName: Caller {i}\r\nConnectedLineNum: 07{i:08d}\r\n"
                f"ConnectedLineName: Caller {i}\r\nLanguage: en\r\nAccountCode: \r\nContext: {context}\r\n"
                f"Exten: {exten}\r\nPriority: 1\r\nUniqueid: {uniqueid}\r\nLinkedid: {linkedid}\r\n"
                f"Application: {app}\r\nApplicationData: hotline-1,,,,20\r\nDuration: 00:00:{10 + i % 40:02d}\r\n"
                f"BridgeId: {'b-' + str(i) if talking and side == '2' else ''}\r\n\r\n"
            )
    frames.append(
        f"Event: CoreShowChannelsComplete\r\nActionID: {action_id}\r\nEventList: Complete\r\n"
        f"ListItems: {channels}\r\n\r\n"
    )
    return "".join(frames).encode()


async def run(url: str, channels: int) -> float:
    await prepare_db(url)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        buffer = [""]
        while data := await reader.read(65536):
            for action in _parse_actions(data, buffer):
                aid, name = action.get("ActionID", ""), action.get("Action", "")
                if name == "Login":
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode()
                    )
                elif name == "CoreShowChannels":
                    writer.write(snapshot(aid, channels))
                else:
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: will follow\r\n\r\n"
                        f"Event: QueueStatusComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n".encode()
                    )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = make_engine(url)
    listener = CallListener(PbxSettings(id="bench", host="127.0.0.1", port=port, username="b", secret="b"),
                            make_session_factory(engine), connection_options={"ping_interval": 30.0})  # fmt: skip
    t0 = time.perf_counter()
    await listener.start()
    while listener.stats.calls_written < channels // 2:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - t0
    await listener.stop()
    server.close()
    await engine.dispose()
    return elapsed


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'resync.db'}")]
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        for name, url in targets:
            seconds = await run(url, args.channels)
            out[name] = seconds
            print(f"{name:10s} resync of {args.channels} live channels ({args.channels // 2} calls): {seconds:.3f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument(
        "--postgres",
        default=default_url("hotline_resync_bench"),
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
