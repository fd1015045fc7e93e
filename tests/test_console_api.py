"""Console REST endpoints over real HTTP against the real app and database (no PBX needed here)."""

from __future__ import annotations

import csv
import io
import logging
import os
from datetime import UTC, datetime, timedelta

import httpx
import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Call, PresenceLog, Registration, Shift, ShiftBreak
from test_console_support import PASSWORD, T0, add_call, add_registration, login, seed_people


async def test_my_day_lists_today_shift_and_breaks_left(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    users = await seed_people(sessions)
    now = datetime.now(UTC)
    async with sessions() as session:
        shift = Shift(user_id=users["ana"], starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=6))
        other = Shift(user_id=users["mihai"], starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
        session.add_all([shift, other])
        await session.flush()
        session.add_all([
            ShiftBreak(shift_id=shift.id, kind="break", starts_at=now - timedelta(hours=1),
                       ends_at=now - timedelta(minutes=50), actual_start=now - timedelta(hours=1),
                       actual_end=now - timedelta(minutes=50)),
            ShiftBreak(shift_id=shift.id, kind="lunch", starts_at=now + timedelta(hours=1),
                       ends_at=now + timedelta(hours=1, minutes=30)),
        ])  # fmt: skip
        await session.commit()
    _, ana = await login(client, "ana")
    body = (await client.get("/api/console/day", headers=ana)).json()
    assert [s["id"] for s in body["shifts"]] == [shift.id]
    assert body["shifts"][0]["breaks_left"] == 1
    assert [(b["kind"], b["taken"]) for b in body["shifts"][0]["breaks"]] == [("break", True), ("lunch", False)]


async def test_script_fills_names_line_specific_else_default(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_people(sessions)
    _, ana = await login(client, "ana")
    default = (await client.get("/api/console/script", headers=ana, params={"line": 1})).json()
    assert default["greeting"] == "Hello, Uni Hotline, Ana Pop speaking. {unknown}"
    assert default["closing"] == "Thank you for calling Uni Hotline."
    assert (await client.get("/api/console/script", headers=ana, params={"line": 2})).status_code == 403
    _, mihai = await login(client, "mihai")
    own = (await client.get("/api/console/script", headers=mihai, params={"line": 2})).json()
    assert (own["greeting"], own["closing"], own["line_id"]) == ("Sales, Mihai Ene.", "Bye from Line 2.", 2)


async def test_directory_and_answers_search(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_people(sessions)
    _, ana = await login(client, "ana")

    async def names(path: str, **params: object) -> list[str]:
        response = await client.get(path, headers=ana, params=params)
        assert response.status_code == 200, response.text
        return [r.get("name") or r["title"] for r in response.json()]

    assert await names("/api/console/directory", q="IRINA") == ["Dr. Irina Vasile"]
    assert await names("/api/console/directory", q="housing") == ["Paul Marin"]  # by topic name
    assert await names("/api/console/directory", q="dormitories") == ["Paul Marin"]  # by department
    assert await names("/api/console/directory", topic=1) == ["Dr. Irina Vasile"]
    assert await names("/api/console/directory", q="old") == []  # inactive contacts are not listed
    assert await names("/api/console/directory", q="%") == []  # a literal percent, not a wildcard
    assert await names("/api/console/answers", q="july NOON") == ["Deadlines"]
    assert await names("/api/console/answers", q="july grades") == []
    grants = (await client.get("/api/console/answers", headers=ana, params={"topic": 2})).json()
    assert [(a["title"], a["sensitive"], a["topic"]) for a in grants] == [("Grant amounts", True, "Scholarships")]
    topics = (await client.get("/api/console/topics", headers=ana)).json()
    assert [t["name"] for t in topics] == ["Admissions", "Housing", "Scholarships"]


async def test_registration_only_by_the_operator_or_staff_and_history_shows_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    users = await seed_people(sessions)
    first = await add_call(sessions, caller_number="0711111111", operator="ana", answered_at=T0)
    second = await add_call(sessions, caller_number="0711111111", operator="ana", answered_at=T0 + timedelta(days=1),
                            arrived_at=T0 + timedelta(days=1))  # fmt: skip
    other_line = await add_call(sessions, caller_number="0711111111", line_id=2, number="5552000", operator="mihai",
                                arrived_at=T0 + timedelta(hours=2))  # fmt: skip
    _, ana = await login(client, "ana")
    _, mihai = await login(client, "mihai")
    _, boss = await login(client, "boss")
    body = {"topic_id": 1, "summary": 'asked about, "deadlines"\nand more', "resolution": "resolved"}
    assert (await client.post(f"/api/calls/{first}/registration", headers=mihai, json=body)).status_code == 404
    assert (await client.post(f"/api/calls/{other_line}/registration", headers=mihai, json=body)).status_code == 200
    bad = await client.post(f"/api/calls/{first}/registration", headers=ana, json={**body, "resolution": "maybe"})
    assert bad.status_code == 422
    no_topic = await client.post(f"/api/calls/{first}/registration", headers=ana, json={**body, "topic_id": 99})
    assert no_topic.status_code == 422 and no_topic.json()["details"]["field"] == "topic_id"
    saved = await client.post(f"/api/calls/{first}/registration", headers=ana, json=body)
    assert saved.status_code == 200 and saved.json()["user_id"] == users["ana"]
    corrected = await client.post(f"/api/calls/{first}/registration", headers=boss,
                                  json={**body, "resolution": "escalated", "specialist_id": 1})  # fmt: skip
    assert corrected.json()["resolution"] == "escalated" and corrected.json()["id"] == saved.json()["id"]
    history = (await client.get("/api/console/history", headers=ana, params={"caller_number": "0711111111"})).json()
    # ana sees her two calls (line 1), not the one on mihai's line 2.
    assert [h["call"]["id"] for h in history] == [second, first]
    assert history[1]["topic"] == "Admissions" and history[1]["registration"]["resolution"] == "escalated"
    async with sessions() as session:
        assert len(list(await session.scalars(select(Registration)))) == 2


async def test_worklist_oldest_first_until_called_back(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_people(sessions)
    a = await add_call(sessions, caller_number="0722000001", outcome="abandoned", arrived_at=T0)
    b = await add_call(sessions, caller_number="0722000002", outcome="closed", arrived_at=T0 + timedelta(minutes=1))
    c = await add_call(sessions, caller_number="0722000003", outcome="abandoned", arrived_at=T0 + timedelta(minutes=2))
    await add_call(sessions, caller_number="0722000003", outcome="answered", arrived_at=T0 + timedelta(minutes=9))
    d = await add_call(sessions, caller_number="0722000004", outcome="abandoned", arrived_at=T0 + timedelta(minutes=3))
    await add_call(sessions, caller_number="0722000004", outcome="abandoned", arrived_at=T0 + timedelta(minutes=4),
                   callback_of_id=None)  # fmt: skip
    e = await add_call(sessions, caller_number="0722000005", outcome="abandoned", arrived_at=T0 + timedelta(minutes=5))
    await add_call(sessions, caller_number="0722000009", outcome="answered", callback_of_id=e,
                   arrived_at=T0 + timedelta(minutes=6))  # fmt: skip
    elsewhere = await add_call(sessions, caller_number="0722000006", outcome="abandoned", line_id=2, number="5552000")
    _, ana = await login(client, "ana")
    _, boss = await login(client, "boss")
    ids = [w["call_id"] for w in (await client.get("/api/callbacks", headers=ana)).json()]
    assert c not in ids and e not in ids and elsewhere not in ids  # answered later / called back / not ana's line
    assert ids[:3] == [a, b, d]
    assert (await client.post(f"/api/callbacks/{a}/done", headers=ana)).status_code == 204
    ids = [w["call_id"] for w in (await client.get("/api/callbacks", headers=ana)).json()]
    assert a not in ids and ids[0] == b
    assert elsewhere in [w["call_id"] for w in (await client.get("/api/callbacks", headers=boss)).json()]
    answered = await add_call(sessions, caller_number="0722000007", outcome="answered")
    refused = await client.post(f"/api/callbacks/{answered}/done", headers=ana)
    assert refused.status_code == 409
    no_pbx = await client.post(f"/api/callbacks/{b}/dial", headers=ana)
    assert no_pbx.status_code == 503 and no_pbx.json()["error_id"] == "unavailable"


@pytest.fixture
def recordings(client: httpx.AsyncClient, tmp_path: object) -> object:
    root = client.app.state.runtime.settings.recordings_dir  # type: ignore[attr-defined]
    root.mkdir(parents=True, exist_ok=True)
    (root / "day1").mkdir()
    (root / "day1" / "hotline-1.wav").write_bytes(bytes(range(256)) * 4)
    outside = root.parent / "secret.wav"
    outside.write_bytes(b"not yours")
    os.symlink(outside, root / "link-out.wav")
    return root


async def test_recording_ranges_permissions_and_traversal(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], recordings: object
) -> None:
    await seed_people(sessions)
    root = recordings
    ok = await add_call(sessions, caller_number="1", operator="ana", recording_path="day1/hotline-1.wav")
    absolute = await add_call(sessions, caller_number="2", operator="ana",
                              recording_path=str(root / "day1" / "hotline-1.wav"))  # type: ignore[operator]  # fmt: skip
    dotdot = await add_call(sessions, caller_number="3", operator="ana", recording_path="../secret.wav")
    elsewhere = await add_call(sessions, caller_number="4", operator="ana", recording_path="/etc/passwd")
    symlink = await add_call(sessions, caller_number="5", operator="ana", recording_path="link-out.wav")
    missing = await add_call(sessions, caller_number="6", operator="ana", recording_path="day1/gone.wav")
    none = await add_call(sessions, caller_number="7", operator="ana")
    _, ana = await login(client, "ana")
    _, mihai = await login(client, "mihai")
    _, boss = await login(client, "boss")
    full = await client.get(f"/api/calls/{ok}/recording", headers=ana)
    assert full.status_code == 200 and len(full.content) == 1024 and full.headers["accept-ranges"] == "bytes"
    part = await client.get(f"/api/calls/{ok}/recording", headers={**boss, "Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.headers["content-range"] == "bytes 10-19/1024" and part.content == bytes(range(10, 20))
    tail = await client.get(f"/api/calls/{absolute}/recording", headers={**ana, "Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == bytes(range(252, 256))
    assert (await client.get(f"/api/calls/{ok}/recording", headers=mihai)).status_code == 404  # not his line
    for call_id in (dotdot, elsewhere, symlink):
        refused = await client.get(f"/api/calls/{call_id}/recording", headers=boss)
        assert refused.status_code == 403 and refused.json()["error_id"] == "recording-outside-store"
        assert "not yours" not in refused.text and "passwd" not in refused.text
    gone = await client.get(f"/api/calls/{missing}/recording", headers=boss)
    assert gone.status_code == 404 and gone.json()["error_id"] == "recording-missing"
    assert (await client.get(f"/api/calls/{none}/recording", headers=boss)).json()["error_id"] == "no-recording"


async def _export_seed(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, str]:
    tricky = 'said "hello", then\r\nleft; =SUM(A1) and, commas'
    one = await add_call(sessions, caller_number="0733000001", caller_name="Ștefan, Jr.", operator="ana",
                         answered_at=T0 + timedelta(seconds=5), wait_s=5.0, talk_s=61.5)  # fmt: skip
    two = await add_call(sessions, caller_number="0733000002", outcome="abandoned", arrived_at=T0 + timedelta(hours=1),
                         wait_s=12.0)  # fmt: skip
    await add_call(sessions, caller_number="0733000003", arrived_at=T0 - timedelta(days=5))  # filtered out
    await add_registration(sessions, one, topic_id=1, summary=tricky, resolution="escalated", specialist_id=1)
    return one, two, tricky


async def test_export_csv_round_trips_per_rfc4180(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_people(sessions)
    one, two, tricky = await _export_seed(sessions)
    _, boss = await login(client, "boss")
    _, ana = await login(client, "ana")
    params = {"format": "csv", "from": (T0 - timedelta(hours=1)).isoformat()}
    assert (await client.get("/api/calls/export", headers=ana, params=params)).status_code == 403
    response = await client.get("/api/calls/export", headers=boss, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    raw = response.content.decode("utf-8")
    assert not raw.startswith("\ufeff") and raw.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert [int(r["call_id"]) for r in rows] == [two, one]
    first = rows[1]
    assert first["summary"] == tricky and first["caller_name"] == "Ștefan, Jr."
    assert (first["topic"], first["resolution"], first["specialist"], first["registered_by"]) == (
        "Admissions", "escalated", "Dr. Irina Vasile", "",
    )  # fmt: skip
    assert first["talk_s"] == "61.5" and datetime.fromisoformat(first["arrived_at"]) == T0
    assert rows[0]["summary"] == "" and rows[0]["outcome"] == "abandoned"
    with_bom = await client.get("/api/calls/export", headers=boss, params={**params, "bom": "true"})
    assert with_bom.content.startswith("\ufeff".encode())
    bad = await client.get("/api/calls/export", headers=boss, params={"from": "2026-11-23T09:00:00"})
    assert bad.status_code == 422


async def test_export_xlsx_one_typed_row_per_call(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_people(sessions)
    one, two, tricky = await _export_seed(sessions)
    _, boss = await login(client, "boss")
    params = {"format": "xlsx", "from": (T0 - timedelta(hours=1)).isoformat()}
    response = await client.get("/api/calls/export", headers=boss, params=params)
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    rows = list(book["calls"].iter_rows(values_only=True))
    header, data = rows[0], rows[1:]
    assert len(data) == 2
    by_id = {row[header.index("call_id")]: dict(zip(header, row, strict=True)) for row in data}
    assert set(by_id) == {one, two}
    first = by_id[one]
    assert first["summary"] == tricky.replace("\r\n", "\n") or first["summary"] == tricky  # a text cell, not a formula
    assert first["talk_s"] == 61.5 and first["wait_s"] == 5
    assert first["arrived_at"] == T0.replace(tzinfo=None)
    assert (first["topic"], first["resolution"]) == ("Admissions", "escalated")
    assert by_id[two]["resolution"] is None and by_id[two]["outcome"] == "abandoned"
    assert book["calls"].cell(row=1 + 1 + list(by_id).index(one), column=header.index("summary") + 1).data_type == "s"


async def test_no_secret_in_responses_or_logs(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await seed_people(sessions)
    call = await add_call(sessions, caller_number="0744000001", operator="ana", answered_at=T0)
    token, ana = await login(client, "ana")
    _, boss = await login(client, "boss")
    texts = []
    for method, path, kwargs in (
        ("GET", "/api/console/day", {}), ("GET", "/api/console/current-call", {}), ("GET", "/api/console/queue", {}),
        ("GET", "/api/callbacks", {}), ("POST", f"/api/calls/{call}/transfer", {"json": {"target": "201"}}),
        ("POST", f"/api/calls/{call}/registration", {"json": {"resolution": "resolved", "summary": "ok"}}),
    ):  # fmt: skip
        texts.append((await client.request(method, path, headers=ana, **kwargs)).text)
    texts.append((await client.get("/api/calls/export", headers=boss)).text)
    joined = "\n".join(texts) + "\n".join(r.getMessage() for r in caplog.records)

    assert token not in joined and PASSWORD not in joined
    async with sessions() as session:
        assert (await session.scalar(select(Call.id).where(Call.id == call))) == call
        assert list(await session.scalars(select(PresenceLog))) == []  # no wrap-up started: nobody was in wrap-up
