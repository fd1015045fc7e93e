"""Shared seed data and helpers for the console tests (no tests here; imported as a module)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import (
    Call,
    CallEvent,
    Contact,
    ContactTopic,
    Line,
    OperatorLine,
    PreparedAnswer,
    PresenceLog,
    Registration,
    Script,
    Topic,
)
from hotline.users import create_user

PASSWORD = "a long enough password"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LINES = {"5551000": 1, "5552000": 2, "5553000": 3}


async def seed_people(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Lines 1-3; ana (operator, line 1, device) and mihai (operator, line 2); boss (supervisor); knowledge."""
    async with sessions() as session:
        for number, line_id in LINES.items():
            session.add(Line(id=line_id, number=number, name=f"Line {line_id}", always_open=True))
        await session.flush()
        users = {}
        for name, role, device, full in (
            ("ana", "operator", "Local/101@phones/n", "Ana Pop"),
            ("mihai", "operator", "Local/102@phones/n", "Mihai Ene"),
            ("boss", "supervisor", None, "The Boss"),
        ):
            user = await create_user(
                session, username=name, password=PASSWORD, role=role, device=device, full_name=full
            )
            users[name] = user.id
        session.add(OperatorLine(user_id=users["ana"], line_id=1, priority=0))
        session.add(OperatorLine(user_id=users["mihai"], line_id=2, priority=0))
        session.add_all([Topic(id=1, name="Admissions"), Topic(id=2, name="Scholarships"), Topic(id=3, name="Housing")])
        await session.flush()
        session.add_all([
            Contact(id=1, name="Dr. Irina Vasile", title="Dean", department="Admissions office", extension="201"),
            Contact(id=2, name="Paul Marin", title="Clerk", department="Dormitories", phone="+40215550000"),
            Contact(id=3, name="Old Contact", active=False, extension="299"),
        ])  # fmt: skip
        await session.flush()
        session.add_all([ContactTopic(contact_id=1, topic_id=1), ContactTopic(contact_id=2, topic_id=3)])
        session.add_all([
            PreparedAnswer(topic_id=1, title="Deadlines", body="Applications close on 31 July at noon."),
            PreparedAnswer(topic_id=2, title="Grant amounts", body="Amounts depend on GRADES.", sensitive=True),
        ])  # fmt: skip
        session.add(Script(line_id=None, organisation_name="Uni Hotline",
                           greeting_template="Hello, {organisation}, {operator} speaking. {unknown}",
                           closing_template="Thank you for calling {organisation}."))  # fmt: skip
        session.add(Script(line_id=2, organisation_name="Sales Desk", greeting_template="Sales, {operator}.",
                           closing_template="Bye from {line}."))  # fmt: skip
        await session.commit()
    return users


async def set_presence(sessions: async_sessionmaker[AsyncSession], user_id: int, state: str) -> None:
    async with sessions() as session:
        session.add(PresenceLog(user_id=user_id, state=state, at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()


async def add_call(sessions: async_sessionmaker[AsyncSession], **values: Any) -> int:
    defaults: dict[str, Any] = {"pbx_id": "pbx1", "line_id": 1, "number": "5551000", "arrived_at": T0,
                                "outcome": "answered", "rang": []}  # fmt: skip
    defaults.update(values)
    defaults.setdefault("linkedid", f"x.{defaults['arrived_at'].timestamp()}.{defaults.get('caller_number')}")
    async with sessions() as session:
        call = Call(**defaults)
        session.add(call)
        await session.commit()
        return call.id


async def add_registration(sessions: async_sessionmaker[AsyncSession], call_id: int, **values: Any) -> None:
    async with sessions() as session:
        session.add(Registration(call_id=call_id, resolution=values.pop("resolution", "resolved"), **values))
        await session.commit()


async def add_newchannel(sessions: async_sessionmaker[AsyncSession], call_id: int, channel: str) -> None:
    async with sessions() as session:
        session.add(CallEvent(call_id=call_id, key=f"nc-{call_id}", at=T0, event="Newchannel",
                              summary={"Channel": channel, "Exten": "5551000"}))  # fmt: skip
        await session.commit()


async def login(client: httpx.AsyncClient, username: str) -> tuple[str, dict[str, str]]:
    response = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return token, {"Authorization": f"Bearer {token}"}


async def wait_until(predicate: Callable[[], Any], within: float = 10.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class WsReader:
    """Collects the JSON messages of a ``websockets`` client connection in the background."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.closed: tuple[int | None, str | None] | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        import websockets

        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        self.closed = (self.ws.close_code, self.ws.close_reason)

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if "id" in m and (type_ is None or m["type"] == type_)]

    async def wait_for(self, type_: str, within: float = 10.0, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for m in self.events(type_):
                if all(m["data"].get(k) == v for k, v in match.items()):
                    return m
            return None

        return await wait_until(found, within, f"{type_} {match}")

    async def stop(self) -> None:
        await self.ws.close()
        await self._task


# --- a live server: uvicorn on a free port, a PBX simulator and a real CallListener ------------------------------


class LiveHotline:
    def __init__(self, app: Any, port: int, simulator: Any, listener: Any) -> None:
        self.app = app
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/api/ws"
        self.simulator = simulator
        self.listener = listener

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def console(self) -> Any:
        from hotline.services.console import console_service

        return console_service(self.runtime)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10)


async def start_live(
    settings: Any, *, speed: float = 4.0, operators: dict[str, str] | None = None
) -> tuple[LiveHotline, Callable[[], Any]]:
    """The real app under uvicorn (PBX services not auto-started), with a simulator and a listener wired in."""
    import uvicorn

    from hotline.ami.simulator import PbxSimulator
    from hotline.api.app import create_app
    from hotline.services.call_listener import CallListener
    from hotline.services.console import console_service
    from hotline.settings import PbxSettings

    app = create_app(settings, start_services=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    serve = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 10, "uvicorn start")
    port = server.servers[0].sockets[0].getsockname()[1]
    simulator = PbxSimulator(username="hotline", secret="ami-secret-do-not-leak", lines=LINES, speed=speed, seed=3,
                             operators=operators)  # fmt: skip
    sim_port = await simulator.start("127.0.0.1", 0)
    runtime = app.state.runtime
    pbx = PbxSettings(id="pbx1", host="127.0.0.1", port=sim_port, username="hotline", secret="ami-secret-do-not-leak")
    listener = CallListener(pbx, runtime.sessions, connection_options={"backoff_base": 0.02, "backoff_cap": 0.2})
    await listener.start()
    await listener.connection.wait_logged_in(10)
    runtime.listeners[pbx.id] = listener
    console_service(runtime)  # hook the push into the listener, as bootstrap's start(runtime) will

    async def stop() -> None:
        await listener.stop()
        await simulator.stop()
        server.should_exit = True
        await serve

    return LiveHotline(app, port, simulator, listener), stop


async def ws_connect(url: str, token: str | None = None, **kwargs: Any) -> Any:
    import websockets

    headers = {"Authorization": f"Bearer {token}"} if token else None
    return await websockets.connect(url, additional_headers=headers, open_timeout=10, **kwargs)
