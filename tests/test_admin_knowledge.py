"""Topics, directory contacts, prepared answers, scripts and tariffs over HTTP."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import assert_error, audit, sign_in_staff


async def test_topics_contacts_and_answers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    fees = (await client.post("/api/admin/topics", json={"name": "Fees"}, headers=staff.admin)).json()
    visas = (
        await client.post(
            "/api/admin/topics", json={"name": "Visas", "description": "Student visas"}, headers=staff.admin
        )
    ).json()
    assert_error(await client.post("/api/admin/topics", json={"name": "Fees"}, headers=staff.admin), 409)
    assert_error(
        await client.patch(f"/api/admin/topics/{visas['id']}", json={"name": "Fees"}, headers=staff.admin), 409
    )
    assert_error(await client.post("/api/admin/topics", json={"name": ""}, headers=staff.admin), 422)
    assert [t["name"] for t in (await client.get("/api/admin/topics", headers=staff.operator)).json()] == [
        "Fees",
        "Visas",
    ]

    contact = {
        "name": "Dr. Ionescu",
        "title": "Registrar",
        "phone": "+40 21 555 0101",
        "email": "ionescu@uni.example",
        "topic_ids": [visas["id"], fees["id"]],
    }
    created = await client.post("/api/admin/contacts", json=contact, headers=staff.admin)
    assert created.status_code == 201, created.text
    assert created.json()["topic_ids"] == sorted([fees["id"], visas["id"]])
    cid = created.json()["id"]
    for bad in ({"topic_ids": [999]}, {"email": "not an email"}, {"phone": "call me"}, {"name": ""}):
        assert_error(await client.post("/api/admin/contacts", json=contact | bad, headers=staff.admin), 422)
    by_topic = await client.get("/api/admin/contacts", params={"topic_id": fees["id"]}, headers=staff.operator)
    assert [c["id"] for c in by_topic.json()] == [cid]
    changed = await client.patch(
        f"/api/admin/contacts/{cid}", json={"topic_ids": [visas["id"]], "notes": "Mornings"}, headers=staff.admin
    )
    assert changed.json()["topic_ids"] == [visas["id"]] and changed.json()["notes"] == "Mornings"
    assert (
        await client.get("/api/admin/contacts", params={"topic_id": fees["id"]}, headers=staff.operator)
    ).json() == []

    answer = {"topic_id": visas["id"], "title": "Visa deadlines", "body": "Apply by 1 August.", "sensitive": True}
    made = await client.post("/api/admin/prepared-answers", json=answer, headers=staff.admin)
    assert made.status_code == 201 and made.json()["sensitive"] is True
    assert_error(
        await client.post("/api/admin/prepared-answers", json=answer | {"topic_id": 999}, headers=staff.admin), 422
    )
    read = await client.get("/api/admin/prepared-answers", params={"topic_id": visas["id"]}, headers=staff.operator)
    assert [a["title"] for a in read.json()] == ["Visa deadlines"]
    # a topic in use by prepared answers is not deleted from under them
    assert_error(await client.delete(f"/api/admin/topics/{visas['id']}", headers=staff.admin), 409)
    assert (
        await client.patch(
            f"/api/admin/prepared-answers/{made.json()['id']}", json={"sensitive": False}, headers=staff.admin
        )
    ).json()["sensitive"] is False
    assert (
        await client.delete(f"/api/admin/prepared-answers/{made.json()['id']}", headers=staff.admin)
    ).status_code == 204
    assert (await client.delete(f"/api/admin/topics/{visas['id']}", headers=staff.admin)).status_code == 204
    assert (await client.get(f"/api/admin/contacts/{cid}", headers=staff.operator)).json()["topic_ids"] == []
    assert_error(await client.get(f"/api/admin/topics/{visas['id']}", headers=staff.operator), 404)

    contact_log = await audit(client, staff, entity="contact")
    assert [e["action"] for e in contact_log] == ["update", "update", "create"]
    assert contact_log[0]["before"]["topic_ids"] == [visas["id"]] and contact_log[0]["after"]["topic_ids"] == []
    assert [e["action"] for e in await audit(client, staff, entity="topic")] == ["delete", "create", "create"]
    assert [e["action"] for e in await audit(client, staff, entity="prepared_answer")] == ["delete", "update", "create"]


async def test_operators_read_knowledge_but_edit_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    topic = (await client.post("/api/admin/topics", json={"name": "Fees"}, headers=staff.admin)).json()
    writes = [
        ("POST", "/api/admin/topics", {"name": "X"}),
        ("PATCH", f"/api/admin/topics/{topic['id']}", {"name": "Y"}),
        ("DELETE", f"/api/admin/topics/{topic['id']}", None),
        ("POST", "/api/admin/contacts", {"name": "X"}),
        ("POST", "/api/admin/prepared-answers", {"topic_id": topic["id"], "title": "t", "body": "b"}),
        (
            "POST",
            "/api/admin/scripts",
            {"organisation_name": "U", "greeting_template": "Hi", "closing_template": "Bye"},
        ),
    ]
    for who in (staff.operator, staff.supervisor):
        for method, url, body in writes:
            assert_error(await client.request(method, url, json=body, headers=who), 403)
    for url in ("/api/admin/topics", "/api/admin/contacts", "/api/admin/prepared-answers", "/api/admin/scripts"):
        assert (await client.get(url, headers=staff.operator)).status_code == 200, url
    assert_error(await client.get("/api/admin/tariffs", headers=staff.operator), 403)
    assert [e["entity"] for e in await audit(client, staff)] == ["topic"]


async def test_scripts(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    body = {
        "organisation_name": "City University",
        "greeting_template": "{organisation}, {operator} speaking.",
        "closing_template": "Thank you for calling {organisation}. {{Goodbye}}",
    }
    default = await client.post("/api/admin/scripts", json=body, headers=staff.admin)
    assert default.status_code == 201 and default.json()["line_id"] is None
    assert_error(await client.post("/api/admin/scripts", json=body, headers=staff.admin), 409)
    line = (await client.post("/api/admin/lines", json={"number": "5551000", "name": "S"}, headers=staff.admin)).json()
    per_line = await client.post("/api/admin/scripts", json=body | {"line_id": line["id"]}, headers=staff.admin)
    assert per_line.status_code == 201
    assert_error(await client.post("/api/admin/scripts", json=body | {"line_id": line["id"]}, headers=staff.admin), 409)
    assert_error(await client.post("/api/admin/scripts", json=body | {"line_id": 999}, headers=staff.admin), 422)
    for template in (
        "Hello {caller}",
        "Hello {organisation",
        "Hello {0}",
        "Hello {}",
        "Hi {operator!r}",
        "{operator:>10}",
    ):
        bad = await client.post(
            "/api/admin/scripts", json=body | {"line_id": None, "greeting_template": template}, headers=staff.admin
        )
        assert_error(bad, 422, "invalid-request")
        assert_error(
            await client.patch(
                f"/api/admin/scripts/{default.json()['id']}", json={"closing_template": template}, headers=staff.admin
            ),
            422,
        )
    changed = await client.patch(
        f"/api/admin/scripts/{default.json()['id']}", json={"organisation_name": "City Uni"}, headers=staff.admin
    )
    assert changed.json()["organisation_name"] == "City Uni"
    assert [s["line_id"] for s in (await client.get("/api/admin/scripts", headers=staff.operator)).json()] == [
        None,
        line["id"],
    ]
    assert (await client.delete(f"/api/admin/scripts/{per_line.json()['id']}", headers=staff.admin)).status_code == 204
    assert [e["action"] for e in await audit(client, staff, entity="script")] == [
        "delete",
        "update",
        "create",
        "create",
    ]


async def test_tariffs(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    line = (await client.post("/api/admin/lines", json={"number": "5551000", "name": "S"}, headers=staff.admin)).json()
    body = {
        "line_id": line["id"],
        "name": "Carrier A",
        "valid_from": "2026-01-01",
        "monthly_fee": "12.50",
        "price_per_minute": "0.0125",
        "billing_increment_s": 60,
        "currency": "EUR",
    }
    created = await client.post("/api/admin/tariffs", json=body, headers=staff.admin)
    assert created.status_code == 201, created.text
    tariff = created.json()
    assert tariff["price_per_minute"] == "0.0125" and tariff["comparison"] is False
    for bad in (
        {"monthly_fee": "-1"},
        {"billing_increment_s": 0},
        {"currency": "euro"},
        {"line_id": 999},
        {"price_per_minute": "0.00001"},
    ):
        assert_error(await client.post("/api/admin/tariffs", json=body | bad, headers=staff.admin), 422)
    offer = await client.post(
        "/api/admin/tariffs",
        json=body | {"name": "Carrier B", "comparison": True, "line_id": None},
        headers=staff.admin,
    )
    assert offer.status_code == 201
    changed = await client.patch(
        f"/api/admin/tariffs/{tariff['id']}", json={"price_per_minute": "0.01"}, headers=staff.admin
    )
    assert changed.json()["price_per_minute"] == "0.0100"
    listed = await client.get("/api/admin/tariffs", params={"line_id": line["id"]}, headers=staff.supervisor)
    assert [t["name"] for t in listed.json()] == ["Carrier A"]
    assert_error(
        await client.patch(f"/api/admin/tariffs/{tariff['id']}", json={"name": "x"}, headers=staff.supervisor), 403
    )
    assert (await client.delete(f"/api/admin/tariffs/{tariff['id']}", headers=staff.admin)).status_code == 204
    assert_error(await client.delete(f"/api/admin/tariffs/{tariff['id']}", headers=staff.admin), 404)
    entries = await audit(client, staff, entity="tariff")
    assert [e["action"] for e in entries] == ["delete", "update", "create", "create"]
    assert entries[1]["before"]["price_per_minute"] == "0.0125" and entries[1]["after"]["price_per_minute"] == "0.0100"
