"""Reports benchmark: one million calls in PostgreSQL, then the time of the first-week summary and findings.

All the calls fall in the first week (about 100 a minute, a large call center's week), so the first-week report
really aggregates a million rows. Besides the calls: a registration with a topic for most answered calls and the
operators' presence (on call → wrap-up → available around every answered call), so the wrap-up join and the topic
join work on realistic volumes. Rows are loaded with COPY (asyncpg) into a database of their own
(``hotline_reports_bench`` by default), created and migrated if needed, emptied first.

The week is the last full week before today (finished hours are what the roll-up stores). After the load the
roll-up is brought up to date as ``hotline serve`` does in the background (``services/report_rollups.py``; its time
is printed), then the reports are measured: with every hour stored; with 3 hours changed since (what a refresh every
minute leaves at most in practice: the last hour or two, plus a late registration); and with 24 hours changed (a call
updated in every hour of one day, e.g. registrations completed a day late). Changed hours are marked by the triggers
and read from the raw rows.

Run: ``python -m bench.reports [--calls 1000000] [--postgres URL]``.
Target: each report ≤ 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
from sqlalchemy import text

from bench.pg import default_url, ensure_database, plain_dsn
from hotline.db.engine import make_engine, make_session_factory
from hotline.db.migrate import upgrade
from hotline.db.models import Base
from hotline.reports import service
from hotline.services.report_rollups import refresh

START = datetime.combine(datetime.now(UTC).date() - timedelta(days=8), datetime.min.time(), UTC)
OPERATORS = [f"op{i:02d}" for i in range(40)]
LINES = [(1, "5551000", "Radio", "radio"), (2, "5552000", "Flyers", "flyers"), (3, "5553000", "Website", "website")]
TOPICS = ["Admissions", "Fees", "Timetable", "Documents", "Other"]
OUTCOMES = ["answered"] * 80 + ["abandoned"] * 10 + ["closed"] * 6 + ["timeout"] * 2 + ["busy", "overflow"]


def generate(n: int, seed: int = 1) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Call rows, registration rows, presence rows (user ids 1..40 follow OPERATORS)."""
    rng = random.Random(seed)
    week_s = 7 * 86400
    calls, registrations, presence = [], [], []
    for i in range(1, n + 1):
        arrived = START + timedelta(seconds=week_s * (i - 1) / n)
        line_id, number, _, _ = LINES[i % 3]
        outcome = OUTCOMES[rng.randrange(len(OUTCOMES))]
        wait = talk = operator = answered = None
        ended = arrived + timedelta(seconds=5)
        if outcome == "answered":
            wait = float(rng.randrange(0, 90))
            talk = float(rng.randrange(20, 600))
            op_index = i % len(OPERATORS)
            operator = OPERATORS[op_index]
            answered = arrived + timedelta(seconds=wait)
            ended = answered + timedelta(seconds=talk)
            if rng.random() < 0.8:
                registrations.append((i, i, op_index + 1, 1 + i % len(TOPICS), "", "resolved"))
            user = op_index + 1
            presence += [
                (user, "on_call", None, answered),
                (user, "wrapup", None, ended),
                (user, "available", None, ended + timedelta(seconds=rng.randrange(5, 60))),
            ]
        elif outcome in ("abandoned", "timeout", "overflow"):
            wait = float(rng.randrange(0, 180))
            ended = arrived + timedelta(seconds=wait)
        calls.append(
            (i, "bench", f"{i}.0", line_id, number, f"07{i:08d}", arrived, answered, ended, wait, talk, operator,
             "[]", outcome, False, False)
        )  # fmt: skip
    return calls, registrations, presence


async def load(url: str, n: int) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    t = time.perf_counter()
    calls, registrations, presence = generate(n)
    print(f"generated {len(calls):,} calls, {len(registrations):,} registrations, {len(presence):,} presence rows "
          f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        t = time.perf_counter()
        await conn.copy_records_to_table("lines", records=[(i, n_, name, src, "UTC", False, "hangup", 60, 15,
                                                           "rrmemory", False, True) for i, n_, name, src in LINES],
                                         columns=["id", "number", "name", "source", "timezone", "always_open",
                                                  "closed_action", "queue_timeout_s", "member_ring_timeout_s",
                                                  "strategy", "recording", "active"])  # fmt: skip
        await conn.copy_records_to_table(
            "users",
            records=[(k + 1, name, "", "operator", "!", True) for k, name in enumerate(OPERATORS)],
            columns=["id", "username", "full_name", "role", "password_hash", "active"],
        )
        await conn.copy_records_to_table(
            "topics",
            records=[(k + 1, name, "") for k, name in enumerate(TOPICS)],
            columns=["id", "name", "description"],
        )
        await conn.copy_records_to_table(
            "tariffs",
            records=[(k, k, "Carrier", date(2026, 1, 1), Decimal(25), Decimal("0.05"), 60, "EUR", False)
                     for k in (1, 2, 3)],
            columns=["id", "line_id", "name", "valid_from", "monthly_fee", "price_per_minute", "billing_increment_s",
                     "currency", "comparison"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "calls",
            records=calls,
            columns=["id", "pbx_id", "linkedid", "line_id", "number", "caller_number", "arrived_at", "answered_at",
                     "ended_at", "wait_s", "talk_s", "operator", "rang", "outcome", "end_inferred",
                     "seen_first_in_resync"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "registrations",
            records=registrations,
            columns=["id", "call_id", "user_id", "topic_id", "summary", "resolution"],
        )
        await conn.copy_records_to_table("presence_log", records=presence, columns=["user_id", "state", "reason", "at"])
        for table in ("calls", "registrations", "users", "lines", "topics", "tariffs"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await conn.execute("ANALYZE")
        print(f"loaded with COPY in {time.perf_counter() - t:.1f} s")
    finally:
        await conn.close()


async def roll_up(url: str) -> float:
    engine = make_engine(url)
    try:
        t = time.perf_counter()
        result = await refresh(make_session_factory(engine))
        took = time.perf_counter() - t
        print(f"roll-up brought up to date in {took:.1f} s ({result.hours} hours stored)")
        return took
    finally:
        await engine.dispose()


async def touch_hours(url: str, hours: int) -> None:
    """Change one call in each of ``hours`` hours from the week's third day on: those hours are marked dirty by the
    triggers and read from the raw rows by the report (until the next refresh)."""
    engine = make_engine(url)
    day = START + timedelta(days=2)
    try:
        async with engine.begin() as conn:
            for h in range(hours):
                at = day + timedelta(hours=h)
                await conn.execute(
                    text(
                        "UPDATE calls SET talk_s = talk_s + 1 WHERE id = (SELECT id FROM calls WHERE arrived_at >= :a"
                        " AND arrived_at < :b AND outcome = 'answered' ORDER BY arrived_at LIMIT 1)"
                    ),
                    {"a": at, "b": at + timedelta(hours=1)},
                )
    finally:
        await engine.dispose()


async def measure(url: str, runs: int) -> dict[str, list[float]]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    timings: dict[str, list[float]] = {"summary": [], "findings": []}
    tz = UTC
    try:
        for _ in range(runs):
            async with sessions() as session:
                start, end = await service.first_week(session, tz)
                t = time.perf_counter()
                report = await service.build(session, start=start, end=end, tz=tz)
                service.summary_json(report)
                timings["summary"].append(time.perf_counter() - t)
            async with sessions() as session:
                t = time.perf_counter()
                report = await service.build(session, start=start, end=end, tz=tz)
                service.findings_json(report)
                timings["findings"].append(time.perf_counter() - t)
        print(f"first week: {start.isoformat()} – {end.isoformat()}, offered {report.summary.totals.offered:,}, "
              f"findings: {sum(len(v) for v in report.found.values())}")  # fmt: skip
    finally:
        await engine.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=default_url("hotline_reports_bench"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-load", action="store_true", help="measure the data already loaded")
    args = parser.parse_args()
    asyncio.run(ensure_database(args.postgres))
    upgrade(args.postgres)
    if not args.no_load:
        asyncio.run(load(args.postgres, args.calls))
    out: dict[str, float] = {"roll-up catch-up s": round(asyncio.run(roll_up(args.postgres)), 1)}
    print("every hour stored:")
    for name, values in asyncio.run(measure(args.postgres, args.runs)).items():
        verdict = "ok" if max(values) <= 2.0 else "OVER the 2 s target"
        print(f"  {name}: " + ", ".join(f"{v:.2f} s" for v in values) + f"  (worst {max(values):.2f} s: {verdict})")
        out[name] = round(max(values), 3)
    for hours in (3, 24):
        asyncio.run(touch_hours(args.postgres, hours))
        print(f"{hours} hours changed since (read from the raw rows):")
        for name, values in asyncio.run(measure(args.postgres, args.runs)).items():
            verdict = "ok" if max(values) <= 2.0 else "OVER the 2 s target"
            print(f"  {name}: " + ", ".join(f"{v:.2f} s" for v in values) + f"  (worst {max(values):.2f} s: {verdict})")
            out[f"{name}, {hours} h changed"] = round(max(values), 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
