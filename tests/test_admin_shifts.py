"""Shift patterns, shifts and breaks over HTTP: supervisors may edit them, operators may not; domain validation."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import assert_error, audit, sign_in_staff
from hotline.services.admin_shifts import pattern_from_slots

SLOT = {
    "weekday": 0,
    "start": "09:00",
    "end": "17:00",
    "breaks": [{"kind": "lunch", "offset_min": 240, "length_min": 30}],
}


async def test_shift_patterns(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    body = {
        "user_id": staff.ids["ana"],
        "name": "Mornings",
        "timezone": "Europe/Bucharest",
        "valid_from": "2026-12-01",
        "slots": [SLOT, SLOT | {"weekday": 6, "start": "22:00", "end": "06:00", "breaks": []}],
    }
    created = await client.post("/api/admin/shift-patterns", json=body, headers=staff.supervisor)
    assert created.status_code == 201, created.text
    pattern = created.json()
    assert pattern["slots"][0] == SLOT and pattern["slots"][1]["end"] == "06:00"
    domain = pattern_from_slots("ana", pattern["timezone"], pattern["slots"])
    assert [t.label for t in domain.templates] == ["Mon 09:00–17:00", "Sun 22:00–06:00"]

    wraps = SLOT | {"start": "05:00", "end": "10:00", "breaks": []}  # Sunday night runs into Monday 05:00–06:00
    overlap = await client.patch(
        f"/api/admin/shift-patterns/{pattern['id']}",
        json={"slots": pattern["slots"] + [wraps]},
        headers=staff.supervisor,
    )
    assert "overlap" in assert_error(overlap, 422, "invalid-shift")["message"]
    long_lunch = SLOT | {"breaks": [{"kind": "lunch", "offset_min": 240, "length_min": 120}]}
    assert_error(
        await client.post("/api/admin/shift-patterns", json=body | {"slots": [long_lunch]}, headers=staff.supervisor),
        422,
        "invalid-shift",
    )
    for bad in (
        {"timezone": "Nowhere"},
        {"valid_to": "2026-11-01"},
        {"user_id": 999},
        {"slots": [SLOT | {"breaks": [{"kind": "nap", "offset_min": 1, "length_min": 10}]}]},
    ):
        assert_error(await client.post("/api/admin/shift-patterns", json=body | bad, headers=staff.admin), 422)
    renamed = await client.patch(
        f"/api/admin/shift-patterns/{pattern['id']}", json={"name": "Early"}, headers=staff.admin
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Early"
    assert_error(await client.post("/api/admin/shift-patterns", json=body, headers=staff.operator), 403)
    assert_error(await client.get("/api/admin/shift-patterns", headers=staff.operator), 403)
    listed = await client.get(
        "/api/admin/shift-patterns", params={"user_id": staff.ids["ana"]}, headers=staff.supervisor
    )
    assert [p["name"] for p in listed.json()] == ["Early"]
    assert (
        await client.delete(f"/api/admin/shift-patterns/{pattern['id']}", headers=staff.supervisor)
    ).status_code == 204
    entries = await audit(client, staff, entity="shift_pattern")
    assert [(e["action"], e["user_id"]) for e in entries] == [
        ("delete", staff.ids["boss"]),
        ("update", staff.ids["root"]),
        ("create", staff.ids["boss"]),
    ]


async def test_shifts_and_breaks(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    ana = staff.ids["ana"]
    shift_body = {"user_id": ana, "starts_at": "2026-12-01T07:00:00Z", "ends_at": "2026-12-01T15:00:00Z"}
    created = await client.post("/api/admin/shifts", json=shift_body, headers=staff.supervisor)
    assert created.status_code == 201, created.text
    shift = created.json()
    overlapping = await client.post(
        "/api/admin/shifts",
        json=shift_body | {"starts_at": "2026-12-01T14:00:00Z", "ends_at": "2026-12-01T20:00:00Z"},
        headers=staff.supervisor,
    )
    assert_error(overlapping, 409, "conflict")
    for bad in (
        {"ends_at": "2026-12-01T06:00:00Z"},
        {"starts_at": "2026-12-01T07:00:00"},
        {"user_id": 999},
        {"pattern_id": 999},
    ):
        assert_error(await client.post("/api/admin/shifts", json=shift_body | bad, headers=staff.supervisor), 422)

    breaks = f"/api/admin/shifts/{shift['id']}/breaks"
    lunch = await client.post(
        breaks,
        json={"kind": "lunch", "starts_at": "2026-12-01T11:00:00Z", "ends_at": "2026-12-01T11:30:00Z"},
        headers=staff.supervisor,
    )
    assert lunch.status_code == 201, lunch.text
    outside = await client.post(
        breaks,
        json={"kind": "break", "starts_at": "2026-12-01T14:50:00Z", "ends_at": "2026-12-01T15:10:00Z"},
        headers=staff.supervisor,
    )
    assert_error(outside, 422, "invalid-shift")
    clash = await client.post(
        breaks,
        json={"kind": "break", "starts_at": "2026-12-01T11:20:00Z", "ends_at": "2026-12-01T11:35:00Z"},
        headers=staff.supervisor,
    )
    assert_error(clash, 422, "invalid-shift")
    # the shift cannot shrink away from its lunch
    assert_error(
        await client.patch(
            f"/api/admin/shifts/{shift['id']}", json={"ends_at": "2026-12-01T11:15:00Z"}, headers=staff.supervisor
        ),
        422,
    )
    actual = await client.patch(
        f"{breaks}/{lunch.json()['id']}",
        json={"actual_start": "2026-12-01T11:02:00Z", "actual_end": "2026-12-01T11:40:00Z"},
        headers=staff.supervisor,
    )
    assert actual.status_code == 200 and actual.json()["actual_end"] == "2026-12-01T11:40:00Z"
    moved = await client.patch(
        f"/api/admin/shifts/{shift['id']}", json={"ends_at": "2026-12-01T16:00:00Z"}, headers=staff.supervisor
    )
    assert moved.status_code == 200
    listed = await client.get(
        "/api/admin/shifts",
        params={"user_id": ana, "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
        headers=staff.supervisor,
    )
    assert [s["id"] for s in listed.json()] == [shift["id"]]
    assert (
        await client.get("/api/admin/shifts", params={"from": "2026-12-02T00:00:00Z"}, headers=staff.supervisor)
    ).json() == []
    assert_error(
        await client.get("/api/admin/shifts", params={"from": "2026-12-02T00:00:00"}, headers=staff.supervisor), 422
    )

    for who in (staff.operator,):
        assert_error(await client.post("/api/admin/shifts", json=shift_body, headers=who), 403)
        assert_error(await client.delete(f"{breaks}/{lunch.json()['id']}", headers=who), 403)
    assert (await client.delete(f"/api/admin/shifts/{shift['id']}", headers=staff.supervisor)).status_code == 204
    assert_error(await client.get(f"/api/admin/shifts/{shift['id']}", headers=staff.supervisor), 404)
    assert [e["action"] for e in await audit(client, staff, entity="shift")] == ["delete", "update", "create"]
    assert [e["action"] for e in await audit(client, staff, entity="shift_break")] == ["delete", "update", "create"]


async def test_supervisor_edits_shifts_but_not_lines(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    shift = {"user_id": staff.ids["ana"], "starts_at": "2026-12-01T07:00:00Z", "ends_at": "2026-12-01T15:00:00Z"}
    assert (await client.post("/api/admin/shifts", json=shift, headers=staff.supervisor)).status_code == 201
    line = {"number": "5551000", "name": "Support"}
    assert_error(await client.post("/api/admin/lines", json=line, headers=staff.supervisor), 403)
    assert [e["entity"] for e in await audit(client, staff)] == ["shift"]
