"""Weekly hours, campaigns and exceptions over HTTP: validated through the domain Schedule, audited, role-checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import assert_error, audit, sign_in_staff
from hotline.db.models import HoursException, Line, WeeklyHours
from hotline.db.repositories.routing import build_schedule
from hotline.domain.hours import ScheduleError, evaluate
from hotline.errors import NotFound
from hotline.services.schedules import schedule_for_line

LINE = {"number": "5551000", "name": "Support", "timezone": "Europe/Bucharest"}


async def _line(client: httpx.AsyncClient, headers: dict[str, str], **extra: object) -> int:
    response = await client.post("/api/admin/lines", json=LINE | extra, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


async def test_weekly_hours_crud_and_schedule(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = await _line(client, staff.admin)
    url = f"/api/admin/lines/{line_id}/hours"
    monday = await client.post(url, json={"weekday": 0, "start": "09:00", "end": "17:00"}, headers=staff.admin)
    assert monday.status_code == 201, monday.text
    assert monday.json()["start"] == "09:00:00" and monday.json()["end"] == "17:00:00"
    friday = await client.post(url, json={"weekday": 4, "start": "22:00", "end": "24:00"}, headers=staff.admin)
    assert friday.status_code == 201 and friday.json()["end"] == "00:00:00"
    moved = await client.patch(f"{url}/{monday.json()['id']}", json={"start": "08:00"}, headers=staff.admin)
    assert moved.status_code == 200 and moved.json()["start"] == "08:00:00"

    async with sessions() as session:
        schedule = await schedule_for_line(session, line_id)
    assert [r.label for r in schedule.weekly] == ["Mon 08:00–17:00", "Fri 22:00–24:00"]
    # Monday 23 Nov 2026, 07:30 Bucharest (UTC+2) = 05:30 UTC: closed, opens at 08:00 local = 06:00 UTC.
    status = evaluate(schedule, datetime(2026, 11, 23, 5, 30, tzinfo=UTC))
    assert not status.open and status.next_change == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

    assert (await client.delete(f"{url}/{friday.json()['id']}", headers=staff.admin)).status_code == 204
    assert_error(await client.delete(f"{url}/{friday.json()['id']}", headers=staff.admin), 404)
    listed = await client.get(url, headers=staff.supervisor)
    assert [(r["weekday"], r["start"]) for r in listed.json()] == [(0, "08:00:00")]
    entries = await audit(client, staff, entity="weekly_hours")
    assert [e["action"] for e in entries] == ["delete", "update", "create", "create"]
    assert entries[1]["before"]["start_time"] == "09:00:00" and entries[1]["after"]["start_time"] == "08:00:00"


async def test_invalid_hours_are_422_with_the_domain_message(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = await _line(client, staff.admin)
    url = f"/api/admin/lines/{line_id}/hours"
    empty = assert_error(
        await client.post(url, json={"weekday": 0, "start": "09:00", "end": "09:00"}, headers=staff.admin),
        422,
        "invalid-schedule",
    )
    assert "empty" in empty["message"]
    for bad in (
        {"weekday": 7, "start": "09:00", "end": "10:00"},
        {"weekday": 0, "start": "25:00", "end": "10:00"},
        {"weekday": 0, "start": "09:00"},
    ):
        assert_error(await client.post(url, json=bad, headers=staff.admin), 422, "invalid-request")
    ok = await client.post(url, json={"weekday": 0, "start": "09:00", "end": "17:00"}, headers=staff.admin)
    assert_error(await client.patch(f"{url}/{ok.json()['id']}", json={"end": "09:00"}, headers=staff.admin), 422)
    both = assert_error(
        await client.patch(f"/api/admin/lines/{line_id}", json={"always_open": True}, headers=staff.admin),
        422,
        "invalid-schedule",
    )
    assert "24/7" in both["message"]
    assert_error(await client.post(url, json={"weekday": 0, "start": "09:00", "end": "17:00"}), 401)
    assert (await client.get(url, headers=staff.admin)).json()[0]["end"] == "17:00:00"
    assert [e["action"] for e in await audit(client, staff, entity="weekly_hours")] == ["create"]
    assert (await client.get(f"/api/admin/lines/{line_id}", headers=staff.admin)).json()["always_open"] is False


async def test_replace_the_week(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = await _line(client, staff.admin)
    url = f"/api/admin/lines/{line_id}/hours"
    week = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
    first = await client.put(url, json=week, headers=staff.admin)
    assert first.status_code == 200 and len(first.json()) == 5
    kept = {r["weekday"]: r["id"] for r in first.json()}
    second = await client.put(
        url, json=[*week[:4], {"weekday": 5, "start": "10:00", "end": "14:00"}], headers=staff.admin
    )
    assert [r["weekday"] for r in second.json()] == [0, 1, 2, 3, 5]
    assert all(r["id"] == kept[r["weekday"]] for r in second.json() if r["weekday"] < 4)  # unchanged rows kept
    assert_error(
        await client.put(url, json=[{"weekday": 1, "start": "08:00", "end": "08:00"}], headers=staff.admin), 422
    )
    assert len((await client.get(url, headers=staff.admin)).json()) == 5  # the refused PUT deleted nothing
    actions = [e["action"] for e in await audit(client, staff, entity="weekly_hours")]
    assert actions.count("create") == 6 and actions.count("delete") == 1


async def test_campaigns(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = await _line(client, staff.admin)
    url = f"/api/admin/lines/{line_id}/campaigns"
    body = {
        "name": "Admissions",
        "start_date": "2026-07-01",
        "end_date": "2026-07-31",
        "ranges": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)],
    }
    created = await client.post(url, json=body, headers=staff.admin)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert len(campaign["ranges"]) == 5
    overlap = await client.post(
        url, json=body | {"name": "Resits", "start_date": "2026-07-20", "end_date": "2026-08-05"}, headers=staff.admin
    )
    assert "overlap" in assert_error(overlap, 422, "invalid-schedule")["message"]
    backwards = await client.post(
        url, json=body | {"start_date": "2026-09-10", "end_date": "2026-09-01"}, headers=staff.admin
    )
    assert_error(backwards, 422)
    changed = await client.patch(
        f"{url}/{campaign['id']}",
        json={"ranges": [{"weekday": 5, "start": "10:00", "end": "12:00"}]},
        headers=staff.admin,
    )
    assert changed.status_code == 200 and [r["weekday"] for r in changed.json()["ranges"]] == [5]
    # campaign ranges are not the line's weekly ranges
    assert (await client.get(f"/api/admin/lines/{line_id}/hours", headers=staff.admin)).json() == []
    async with sessions() as session:
        schedule = await schedule_for_line(session, line_id)
    assert schedule.campaigns[0].name == "Admissions" and len(schedule.campaigns[0].ranges) == 1
    assert_error(await client.patch(f"{url}/{campaign['id']}", json={"name": "X"}, headers=staff.operator), 403)
    assert_error(await client.get(f"/api/admin/lines/{line_id}/campaigns/999", headers=staff.admin), 404)
    assert (await client.delete(f"{url}/{campaign['id']}", headers=staff.admin)).status_code == 204
    entries = await audit(client, staff, entity="campaign")
    assert [e["action"] for e in entries] == ["delete", "update", "create"]
    assert len(entries[2]["after"]["ranges"]) == 5 and entries[1]["after"]["ranges"][0]["weekday"] == 5
    assert entries[0]["before"]["ranges"][0]["start"] == "10:00:00"


async def test_exceptions(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = await _line(client, staff.admin)
    url = f"/api/admin/lines/{line_id}/exceptions"
    xmas = await client.post(
        url, json={"start_date": "2026-12-25", "end_date": "2026-12-26", "reason": "Christmas"}, headers=staff.admin
    )
    assert xmas.status_code == 201 and xmas.json()["closed"] is True and xmas.json()["ranges"] == []
    eve = await client.post(
        url,
        json={"start_date": "2026-12-24", "reason": "Christmas Eve", "ranges": [{"start": "09:00", "end": "13:00"}]},
        headers=staff.admin,
    )
    assert eve.status_code == 201, eve.text
    assert eve.json()["closed"] is False and eve.json()["end_date"] == "2026-12-24"
    assert eve.json()["ranges"] == [{"start": "09:00", "end": "13:00"}]
    overlapping = await client.post(url, json={"start_date": "2026-12-26", "reason": "Boxing day"}, headers=staff.admin)
    assert_error(overlapping, 422, "invalid-schedule")
    contradiction = await client.post(
        url,
        json={
            "start_date": "2027-01-01",
            "reason": "New year",
            "closed": True,
            "ranges": [{"start": "09:00", "end": "10:00"}],
        },
        headers=staff.admin,
    )
    assert_error(contradiction, 422)
    assert_error(await client.post(url, json={"start_date": "2027-01-01", "reason": ""}, headers=staff.admin), 422)
    closed = await client.patch(f"{url}/{eve.json()['id']}", json={"closed": True}, headers=staff.admin)
    assert closed.status_code == 200 and closed.json()["ranges"] == [] and closed.json()["closed"] is True

    async with sessions() as session:
        schedule = await schedule_for_line(session, line_id)
    assert [e.reason for e in schedule.exceptions] == ["Christmas Eve", "Christmas"]
    assert not evaluate(schedule, datetime(2026, 12, 24, 9, tzinfo=UTC)).open
    assert_error(await client.delete(f"{url}/{xmas.json()['id']}", headers=staff.supervisor), 403)
    assert (await client.delete(f"{url}/{xmas.json()['id']}", headers=staff.admin)).status_code == 204
    assert [e["action"] for e in await audit(client, staff, entity="hours_exception")] == [
        "delete",
        "update",
        "create",
        "create",
    ]


async def test_operators_cannot_edit_hours(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = await _line(client, staff.admin)
    for who in (staff.operator, staff.supervisor):
        hours = {"weekday": 0, "start": "09:00", "end": "17:00"}
        assert_error(await client.post(f"/api/admin/lines/{line_id}/hours", json=hours, headers=who), 403)
        assert_error(await client.put(f"/api/admin/lines/{line_id}/hours", json=[hours], headers=who), 403)
        assert_error(
            await client.post(
                f"/api/admin/lines/{line_id}/exceptions", json={"start_date": "2026-12-25", "reason": "X"}, headers=who
            ),
            403,
        )
    assert_error(await client.get(f"/api/admin/lines/{line_id}/hours", headers=staff.operator), 403)
    assert await audit(client, staff, entity="weekly_hours") == []
    assert_error(await client.get("/api/admin/lines/999/hours", headers=staff.admin), 404)


async def test_schedule_for_an_unknown_line(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(NotFound, match="12345"):
            await schedule_for_line(session, 12345)


def test_one_mapping_from_rows_strict_for_the_admin_api_and_lenient_for_routing() -> None:
    """The admin API refuses contradictory rows; routing reads them as the flags say, so the line is still served."""
    line = Line(id=1, number="5551000", name="L", timezone="UTC", always_open=True)
    leftover = [WeeklyHours(id=1, line_id=1, weekday=0, start_time=time(9), end_time=time(17), campaign_id=None)]
    with pytest.raises(ScheduleError, match="24/7"):
        build_schedule(line, leftover, [], [], strict=True)
    assert build_schedule(line, leftover, [], []).weekly == ()

    line.always_open = False
    closed = HoursException(id=7, line_id=1, start_date=date(2026, 12, 25), end_date=date(2026, 12, 25), closed=True,
                            reason="", ranges=[{"start": "09:00", "end": "12:00"}])  # fmt: skip
    with pytest.raises(ScheduleError, match="closed and has opening ranges"):
        build_schedule(line, leftover, [], [closed], strict=True)
    lenient = build_schedule(line, leftover, [], [closed])
    assert lenient.exceptions[0].ranges == () and lenient.exceptions[0].reason == "closed"
