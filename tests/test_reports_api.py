"""Reports over HTTP on a seeded database; the SQL aggregates equal the per-call path on the same data."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Call, Line, PresenceLog, Registration, Topic
from hotline.db.repositories import reports as repo
from hotline.domain import metrics as m
from hotline.errors import Conflict
from hotline.services.demo_week import generate_demo_week
from hotline.users import create_user

PASSWORD = "a long enough password"
TZ = "Europe/Bucharest"
WEEK_START = date(2026, 11, 23)
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def add_people(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await create_user(session, username="boss", password=PASSWORD, role="supervisor")
        await create_user(session, username="opal", password=PASSWORD, role="operator")
        await session.commit()


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_same_totals(a: m.Totals, b: m.Totals) -> None:
    for f in fields(m.Totals):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) or isinstance(y, float):
            assert x == pytest.approx(y, abs=0.05), f.name
        else:
            assert x == y, f.name


def assert_same_summary(sql: m.Summary, pure: m.Summary) -> None:
    assert_same_totals(sql.totals, pure.totals)
    for name in ("by_line", "by_operator", "by_topic", "by_hour"):
        a, b = getattr(sql, name), getattr(pure, name)
        assert set(a) == set(b), name
        for key in a:
            assert_same_totals(a[key], b[key])
    assert sql.waits == pure.waits
    assert sql.occupancy.keys() == pure.occupancy.keys()
    for op, occ in sql.occupancy.items():  # SQLite's julianday() is good to about a millisecond
        assert occ.busy_s == pytest.approx(pure.occupancy[op].busy_s, abs=0.05)
        assert occ.ready_s == pytest.approx(pure.occupancy[op].ready_s, abs=0.05)
    assert sql.by_hour_of_day().keys() == pure.by_hour_of_day().keys()


async def pure_summary(session: AsyncSession, start: datetime, end: datetime, tz: ZoneInfo, line: int | None = None):
    facts = await repo.call_facts(session, start=start, end=end)
    presence = await repo.presence_between(session, start - repo.PRESENCE_MARGIN, end + repo.PRESENCE_MARGIN)
    return m.summarize(facts, presence, start=start, end=end, tz=tz, line_id=line)


async def test_sql_path_equals_per_call_path_on_the_demo_week(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=3, timezone=TZ)
    tz = ZoneInfo(TZ)
    async with sessions() as session:
        for line in (None, 1):
            sql, _, _ = await repo.summary(session, start=demo.start, end=demo.end, tz=tz, line_id=line)
            pure = await pure_summary(session, demo.start, demo.end, tz, line)
            assert_same_summary(sql, pure)
        assert sql.totals.offered > 0
    # The demo week is what it says: every fate, wrap-up matched, lunch and closed hours visible.
    async with sessions() as session:
        full, _, _ = await repo.summary(session, start=demo.start, end=demo.end, tz=tz)
    t = full.totals
    assert t.offered + t.callbacks == demo.calls + demo.callbacks
    assert t.answered and t.abandoned and t.closed and t.callbacks == demo.callbacks
    assert t.wrapup_s > 10 * t.answered  # every answered call has a 10–45 s wrap-up
    assert set(full.occupancy) == {"ana", "bob", "cris", "dana"}
    assert {k for k in full.by_topic} >= {"Admissions", "Fees"}


async def test_sql_path_equals_per_call_path_on_hand_built_edge_cases(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add(Line(id=1, number="5551000", name="Support", source="radio"))
        topic = Topic(name="Fees")
        session.add(topic)
        await session.flush()
        rows = [
            # (minute, outcome, wait, talk, operator, callback_of)
            (0, "answered", 20.0, 100.0, "ana", None),  # answered exactly at T
            (1, "answered", None, None, "ana", None),  # no wait, no talk known
            (2, "abandoned", 4.9, None, None, None),  # short
            (3, "abandoned", 5.0, None, None, None),  # not short (>= 5 s), not after T
            (4, "abandoned", 20.5, None, None, None),  # after T
            (5, "voicemail", None, None, None, None),
            (6, "in_progress", None, None, None, None),
            (7, "closed", None, None, None, None),
            (8, "answered", 3.0, 50.0, "ana", 5),  # a callback
        ]
        for i, (minute, outcome, wait, talk, op, cb) in enumerate(rows, start=1):
            at = T0 + timedelta(minutes=minute)
            end = at + timedelta(seconds=(wait or 0) + (talk or 0))
            session.add(Call(id=i, pbx_id="p", linkedid=f"l{i}", line_id=1, number="5551000", arrived_at=at,
                             ended_at=end, wait_s=wait, talk_s=talk, operator=op, outcome=outcome,
                             callback_of_id=cb))  # fmt: skip
        await session.flush()
        ana = await create_user(session, username="ana", password=PASSWORD, role="operator")
        call_end = T0 + timedelta(seconds=120)
        for at, state in (
            (T0, "available"),
            (call_end - timedelta(milliseconds=3), "wrapup"),
            (call_end + timedelta(seconds=30), "available"),
            (T0 + timedelta(hours=1), "offline"),
        ):
            session.add(PresenceLog(user_id=ana.id, state=state, at=at))  # fmt: skip
        session.add(Registration(call_id=1, user_id=ana.id, topic_id=topic.id, resolution="resolved"))
        await session.commit()
    end = T0 + timedelta(days=1)
    async with sessions() as session:
        sql, talk, _ = await repo.summary(session, start=T0, end=end)
        pure = await pure_summary(session, T0, end, ZoneInfo("UTC"))
    assert_same_summary(sql, pure)
    t = sql.totals
    assert (t.offered, t.answered, t.short_abandoned, t.abandoned, t.abandoned_after_t) == (8, 2, 1, 2, 1)
    assert (t.other, t.closed, t.callbacks, t.answered_within_t) == (2, 1, 1, 2)
    assert t.wrapup_s == pytest.approx(30.003, abs=1e-3)  # ana's 30.003 s of wrap-up over her 2 answered calls
    assert m.service_level(t) == 2 / 3 and m.asa(t) == 10 and m.aht(t) == pytest.approx(130.003 / 2, abs=1e-3)
    assert set(sql.by_topic) == {"Fees", m.UNREGISTERED}
    assert talk == {1: {100: 1, 50: 1}}  # the callback (outbound) is billed; unanswered calls are not


async def test_demo_week_refuses_a_database_that_is_not_empty(sessions: async_sessionmaker[AsyncSession]) -> None:
    await generate_demo_week(sessions, start=WEEK_START, seed=1)
    with pytest.raises(Conflict):
        await generate_demo_week(sessions, start=WEEK_START, seed=1)


async def test_reports_api(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=5, timezone=TZ)
    await add_people(sessions)
    assert (await client.get("/api/reports/summary")).status_code == 401
    operator = await login(client, "opal")
    assert (await client.get("/api/reports/summary", headers=operator)).status_code == 403
    boss = await login(client, "boss")

    week = await client.get("/api/reports/first-week", params={"tz": TZ}, headers=boss)
    assert week.status_code == 200, week.text
    body = week.json()
    assert body["summary"]["period"]["from"] == demo.start.isoformat()
    assert body["summary"]["period"]["to"] == demo.end.isoformat()

    summary = await client.get(
        "/api/reports/summary", params={"from": "2026-11-23", "to": "2026-11-30", "tz": TZ}, headers=boss
    )
    assert summary.status_code == 200
    s = summary.json()
    assert s == body["summary"]
    async with sessions() as session:
        pure = await pure_summary(session, demo.start, demo.end, ZoneInfo(TZ))
        calls = await session.scalar(select(func.count()).select_from(Call))
    assert s["totals"] == pytest.approx(m.figures(pure.totals))
    assert s["totals"]["offered"] + s["totals"]["callbacks"] == calls
    assert {row["line_id"]: row["offered"] for row in s["by_line"]} == {k: t.offered for k, t in pure.by_line.items()}
    assert [row["hour"] for row in s["by_hour_of_day"]] == list(pure.by_hour_of_day())
    assert len(s["series"]) == 7 * 24 and all(row["operators_on_duty"] is not None for row in s["series"])
    lunch = [row for row in s["series"] if row["hour"].endswith("10:00:00+00:00")]  # 12:00 in Bucharest
    assert max(row["operators_on_duty"] for row in lunch) < 4
    assert {c["tariff"] for c in s["costs"]["lines"]} == {"Carrier A", "Carrier B"}
    assert {c["tariff"] for c in s["costs"]["comparisons"]} == {"Offer C"}

    one_line = await client.get("/api/reports/summary", params={"from": "2026-11-23", "line": 1}, headers=boss)
    assert one_line.status_code == 200
    assert one_line.json()["totals"]["offered"] == next(r["offered"] for r in s["by_line"] if r["line_id"] == 1)

    found = await client.get("/api/reports/findings", params={"from": "2026-11-23", "tz": TZ}, headers=boss)
    assert found.status_code == 200
    rules = {f["rule"] for f in found.json()["weaknesses"]} | {f["rule"] for f in found.json()["strengths"]}
    assert {"closed_demand", "sl_hour", "topic_talk_time", "cost_outlier", "break_overrun", "top_source"} <= rules
    for f in found.json()["weaknesses"]:
        assert f["calls"]["from"] and f["calls"]["to"] and f["text"] and f["evidence"]
    impacts = [f["impact"] for f in found.json()["weaknesses"]]
    assert impacts == sorted(impacts, reverse=True)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "yesterday"}, 422),
        ({"from": "2026-11-23T00:00:00"}, 422),  # no zone
        ({"from": "2026-11-23", "to": "2026-11-20"}, 422),
        ({"from": "2026-01-01", "to": "2027-06-01"}, 422),  # too long
        ({"tz": "Mars/Olympus"}, 422),
        ({"line": 99}, 404),
        ({"line": 0}, 422),
    ],
)
async def test_bad_report_parameters(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], params: dict[str, str], status: int
) -> None:
    async with sessions() as session:
        session.add(Line(id=1, number="5551000", name="Support"))
        await session.flush()
        session.add(Call(pbx_id="p", linkedid="x", line_id=1, number="5551000", arrived_at=T0, outcome="answered"))
        await session.commit()
    await add_people(sessions)
    boss = await login(client, "boss")
    response = await client.get("/api/reports/summary", params=params, headers=boss)
    assert response.status_code == status, response.text
    assert response.json()["message"]


async def test_first_week_without_calls_is_a_clear_404(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_people(sessions)
    boss = await login(client, "boss")
    response = await client.get("/api/reports/first-week", headers=boss)
    assert response.status_code == 404 and "first call" in response.json()["message"]
    page = await client.get("/reports/first-week", headers=boss)
    assert page.status_code == 404


async def test_report_page_over_asgi(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    await generate_demo_week(sessions, start=WEEK_START, seed=5, timezone=TZ)
    await add_people(sessions)
    assert (await client.get("/reports/first-week")).status_code == 401
    assert (await client.get("/reports/first-week", headers=await login(client, "opal"))).status_code == 403
    page = await client.get("/reports/first-week", params={"tz": TZ}, headers=await login(client, "boss"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert (
        html.count("<svg") == 6
        and "<script" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "@media print" in html and "@media (max-width" in html
    assert "What to improve" in html and "Admissions" in html
    assert "default-src 'none'" in page.headers["content-security-policy"]
