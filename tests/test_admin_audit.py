"""The audit log endpoint: admin only, newest first, filters, cursor pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import assert_error, audit, sign_in_staff


async def test_audit_filters_and_pages(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    for i in range(7):
        assert (await client.post("/api/admin/topics", json={"name": f"T{i}"}, headers=staff.admin)).status_code == 201
    shift = {"user_id": staff.ids["ana"], "starts_at": "2026-12-01T07:00:00Z", "ends_at": "2026-12-01T15:00:00Z"}
    assert (await client.post("/api/admin/shifts", json=shift, headers=staff.supervisor)).status_code == 201

    first = (await audit(client, staff, entity="topic"))[-1]
    same = await client.patch(f"/api/admin/topics/{first['entity_id']}", json={"name": "T0"}, headers=staff.admin)
    assert same.status_code == 200  # a change that changes nothing is not logged

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/audit", params=params, headers=staff.admin)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 8 and seen == sorted(seen, reverse=True)

    by_boss = await audit(client, staff, user=staff.ids["boss"])
    assert [(e["entity"], e["username"]) for e in by_boss] == [("shift", "boss")]
    topics = await audit(client, staff, entity="topic")
    assert len(topics) == 7 and topics[0]["after"]["name"] == "T6"
    one = await audit(client, staff, entity="topic", entity_id=topics[-1]["entity_id"])
    assert [e["after"]["name"] for e in one] == ["T0"]
    now = datetime.now(UTC)
    assert len(await audit(client, staff, **{"from": (now - timedelta(hours=1)).isoformat()})) == 8
    assert await audit(client, staff, **{"from": (now + timedelta(hours=1)).isoformat()}) == []
    assert await audit(client, staff, **{"to": (now - timedelta(hours=1)).isoformat()}) == []

    for params in ({"cursor": "abc"}, {"limit": 0}, {"from": "2026-11-23T09:00:00"}):
        assert_error(await client.get("/api/audit", params=params, headers=staff.admin), 422)
    assert_error(await client.get("/api/audit", headers=staff.supervisor), 403)
    assert_error(await client.get("/api/audit", headers=staff.operator), 403)
    assert_error(await client.get("/api/audit"), 401)
