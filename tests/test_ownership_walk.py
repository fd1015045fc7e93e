"""The authorization walk's third dimension: an operator reaches their own resources and not another's.

Two operators, each serving one line, and calls of every kind of ownership: a call on my line that I took, a call
on my line that my colleague took, a call on a line I do not serve. Each endpoint an operator may call with a
resource in its path (or a line in its query) is tried by the owner, by the other operator and by a supervisor.
The owner and the supervisor are never refused (401/403/404); the other operator is always refused (403 or 404,
404 where even the existence of the resource is not theirs to know) and changes nothing. A new operator endpoint
with a resource in its path fails :func:`test_every_operator_resource_endpoint_is_in_the_matrix` until it is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Call, Line, OperatorLine, Registration, Script
from hotline.settings import Settings
from hotline.users import create_user
from test_authorization_walk import _routes

PASSWORD = "a long enough password"
T0 = datetime.now(UTC) - timedelta(hours=2)

#: Operator endpoints whose path resource is shared reference data, the same for every operator (read-only).
SHARED = {
    ("GET", "/api/admin/topics/{topic_id}"),
    ("GET", "/api/admin/contacts/{contact_id}"),
    ("GET", "/api/admin/prepared-answers/{answer_id}"),
    ("GET", "/api/admin/scripts/{script_id}"),
}


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    own: str
    """the URL with the owner's resource"""
    other: str
    """the URL with a resource that is not the caller's"""
    body: dict[str, Any] | None = None


@dataclass
class World:
    ana: int
    bob: int
    mine: int  # line 1, taken by ana
    colleagues: int  # line 1, taken by bob
    foreign: int  # line 2, taken by bob
    abandoned_mine: int  # line 1
    abandoned_foreign: int  # line 2


def cases(w: World) -> list[Case]:
    registration = {"resolution": "resolved", "summary": "asked about fees"}
    return [
        Case("GET", "/api/calls/{call_id}", f"/api/calls/{w.mine}", f"/api/calls/{w.foreign}"),
        Case("POST", "/api/calls/{call_id}/registration", f"/api/calls/{w.mine}/registration",
             f"/api/calls/{w.colleagues}/registration", registration),
        Case("POST", "/api/calls/{call_id}/registration", f"/api/calls/{w.mine}/registration",
             f"/api/calls/{w.foreign}/registration", registration),
        Case("GET", "/api/calls/{call_id}/registration", f"/api/calls/{w.mine}/registration",
             f"/api/calls/{w.foreign}/registration"),
        Case("POST", "/api/calls/{call_id}/transfer", f"/api/calls/{w.mine}/transfer",
             f"/api/calls/{w.colleagues}/transfer", {"target": "2000"}),
        Case("GET", "/api/calls/{call_id}/recording", f"/api/calls/{w.mine}/recording",
             f"/api/calls/{w.colleagues}/recording"),
        Case("GET", "/api/calls/{call_id}/recording", f"/api/calls/{w.mine}/recording",
             f"/api/calls/{w.foreign}/recording"),
        Case("POST", "/api/callbacks/{call_id}/done", f"/api/callbacks/{w.abandoned_mine}/done",
             f"/api/callbacks/{w.abandoned_foreign}/done"),
        Case("POST", "/api/callbacks/{call_id}/dial", f"/api/callbacks/{w.abandoned_mine}/dial",
             f"/api/callbacks/{w.abandoned_foreign}/dial"),
        Case("GET", "/api/lines/{line_id}/status", "/api/lines/1/status", "/api/lines/2/status"),
        Case("GET", "/api/operators/{user_id}/schedule", f"/api/operators/{w.ana}/schedule",
             f"/api/operators/{w.bob}/schedule"),
        Case("GET", "/api/operators/{user_id}/presence", f"/api/operators/{w.ana}/presence",
             f"/api/operators/{w.bob}/presence"),
        Case("POST", "/api/operators/{user_id}/presence", f"/api/operators/{w.ana}/presence",
             f"/api/operators/{w.bob}/presence", {"state": "available"}),
        # A line in the query string is a resource too.
        Case("GET", "/api/calls", "/api/calls?line=1", "/api/calls?line=2"),
        Case("GET", "/api/console/script", "/api/console/script?line=1", "/api/console/script?line=2"),
    ]  # fmt: skip


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> World:
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / "mine.wav").write_bytes(b"RIFF0000WAVE")
    (settings.recordings_dir / "colleagues.wav").write_bytes(b"RIFF0000WAVE")
    (settings.recordings_dir / "foreign.wav").write_bytes(b"RIFF0000WAVE")
    async with sessions() as session:
        session.add_all([Line(id=1, number="5551000", name="Radio"), Line(id=2, number="5552000", name="Web")])
        ana = await create_user(session, username="ana", password=PASSWORD, role="operator")
        bob = await create_user(session, username="bob", password=PASSWORD, role="operator")
        ana.device, bob.device = "PJSIP/op101", "PJSIP/op102"
        await create_user(session, username="boss", password=PASSWORD, role="supervisor")
        await session.flush()
        session.add_all([OperatorLine(user_id=ana.id, line_id=1), OperatorLine(user_id=bob.id, line_id=1),
                         OperatorLine(user_id=bob.id, line_id=2)])  # fmt: skip
        session.add(Script(line_id=None, organisation_name="Org", greeting_template="Hello", closing_template="Bye"))

        def call(n: int, line: int, operator: str | None, outcome: str, recording: str | None = None) -> Call:
            at = T0 + timedelta(minutes=n)
            return Call(pbx_id="pbx1", linkedid=f"own-{n}", line_id=line, number=f"555{line}000",
                        caller_number=f"07000000{n}", arrived_at=at, ended_at=at + timedelta(minutes=3),
                        wait_s=5.0, talk_s=60.0 if operator else None, operator=operator, outcome=outcome,
                        recording_path=recording)  # fmt: skip

        calls = [
            call(1, 1, "ana", "answered", "mine.wav"),
            call(2, 1, "bob", "answered", "colleagues.wav"),
            call(3, 2, "bob", "answered", "foreign.wav"),
            call(4, 1, None, "abandoned"),
            call(5, 2, None, "abandoned"),
        ]
        session.add_all(calls)
        await session.commit()
        return World(ana.id, bob.id, *(c.id for c in calls))


async def _headers(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_every_operator_resource_endpoint_is_in_the_matrix(client: httpx.AsyncClient, world: World) -> None:
    with_resource = {
        (m, p) for m, p, roles in _routes(client.app)  # type: ignore[attr-defined]
        if roles and "operator" in roles and "{" in p
    }  # fmt: skip
    covered = {(c.method, c.route) for c in cases(world)}
    assert with_resource - SHARED <= covered


async def test_operators_reach_their_own_resources_and_not_anothers(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana, boss = await _headers(client, "ana"), await _headers(client, "boss")
    problems = []
    for case in cases(world):
        other = await client.request(case.method, case.other, headers=ana, json=case.body)
        if other.status_code not in (403, 404):
            problems.append((case.method, case.other, "other's resource", other.status_code))
        own = await client.request(case.method, case.own, headers=ana, json=case.body)
        if own.status_code in (401, 403, 404):
            problems.append((case.method, case.own, "own resource refused", own.status_code, own.text[:120]))
        for url in (case.own, case.other):
            staff = await client.request(case.method, url, headers=boss, json=case.body)
            if staff.status_code in (401, 403, 404):
                problems.append((case.method, url, "supervisor refused", staff.status_code, staff.text[:120]))
    assert problems == []


async def test_a_refused_operator_changes_nothing(
    client: httpx.AsyncClient, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana = await _headers(client, "ana")
    for case in cases(world):
        if case.method == "POST":
            assert (await client.post(case.other, headers=ana, json=case.body)).status_code in (403, 404)
    async with sessions() as session:
        assert (await session.scalars(select(Registration))).all() == []
        foreign = await session.get(Call, world.abandoned_foreign)
        assert foreign is not None and foreign.called_back_at is None
    bob = await _headers(client, "bob")
    presence = (await client.get(f"/api/operators/{world.bob}/presence", headers=bob)).json()
    assert presence["state"] == "offline"
