"""What the console shows operators: topics, the directory of specialists, prepared answers, scripts.

Everyone signed in reads them (the console needs them); only admins change them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from hotline.api.deps import SessionDep
from hotline.api.params import MAX_ID, IdPath, OptionalIdQuery
from hotline.api.schemas.admin import (
    AnswerCreate,
    AnswerOut,
    AnswerUpdate,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    ScriptCreate,
    ScriptOut,
    ScriptUpdate,
    TopicCreate,
    TopicOut,
    TopicUpdate,
)
from hotline.api.security import AdminOnly, AnyUser
from hotline.db.models import Contact, Line, PreparedAnswer, Script, Topic
from hotline.db.repositories import admin as repo
from hotline.errors import Conflict, InvalidInput
from hotline.services import admin_crud as crud

router = APIRouter(prefix="/api/admin", tags=["admin: knowledge"])


# --- topics ---------------------------------------------------------------------------------------------------


async def _name_free(session: SessionDep, name: str, topic_id: OptionalIdQuery = None) -> None:
    found = await repo.list_rows(session, Topic, Topic.name == name)
    if any(t.id != topic_id for t in found):
        raise Conflict(f"a topic named {name!r} already exists", details={"field": "name"})


@router.get("/topics", response_model=list[TopicOut], summary="Topics, by name")
async def list_topics(_: AnyUser, session: SessionDep) -> list[Topic]:
    return list(await repo.list_rows(session, Topic, order_by=(Topic.name,)))


@router.get("/topics/{topic_id}", response_model=TopicOut, summary="One topic")
async def get_topic(topic_id: IdPath, _: AnyUser, session: SessionDep) -> Topic:
    return await crud.get_or_404(session, Topic, topic_id, "topic")


@router.post("/topics", response_model=TopicOut, status_code=201, summary="Create a topic")
async def create_topic(body: TopicCreate, principal: AdminOnly, session: SessionDep) -> Topic:
    await _name_free(session, body.name)
    return await crud.create(session, principal.user_id, "topic", Topic(**body.model_dump()))


@router.patch("/topics/{topic_id}", response_model=TopicOut, summary="Rename or describe a topic")
async def update_topic(topic_id: IdPath, body: TopicUpdate, principal: AdminOnly, session: SessionDep) -> Topic:
    topic = await crud.get_or_404(session, Topic, topic_id, "topic")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name"):
        await _name_free(session, changes["name"], topic_id)
    return await crud.update(session, principal.user_id, "topic", topic, changes)


@router.delete("/topics/{topic_id}", status_code=204, summary="Delete a topic without prepared answers")
async def delete_topic(topic_id: IdPath, principal: AdminOnly, session: SessionDep) -> Response:
    """Refused (409) while prepared answers use it: they would vanish with it. Contacts lose the topic (their
    audit entries record it); registrations keep their text with no topic."""
    topic = await crud.get_or_404(session, Topic, topic_id, "topic")
    answers = await repo.answers_of_topic(session, topic_id)
    if answers:
        raise Conflict(
            f"{answers} prepared answers use this topic; move or delete them first",
            details={"prepared_answers": answers},
        )
    for contact_id in await repo.contact_ids_with_topic(session, topic_id):
        contact = await crud.get_or_404(session, Contact, contact_id, "contact")
        topics = (await repo.topic_ids_of_contacts(session, [contact_id]))[contact_id]
        await _update_contact(session, principal.user_id, contact, {}, [t for t in topics if t != topic_id])
    await crud.delete(session, principal.user_id, "topic", topic)
    return Response(status_code=204)


# --- contacts -------------------------------------------------------------------------------------------------


def _contact_out(contact: Contact, topic_ids: list[int]) -> ContactOut:
    return ContactOut(
        id=contact.id,
        name=contact.name,
        title=contact.title,
        department=contact.department,
        phone=contact.phone,
        extension=contact.extension,
        email=contact.email,
        notes=contact.notes,
        active=contact.active,
        topic_ids=topic_ids,
    )


async def _check_topics(session: SessionDep, topic_ids: list[int]) -> list[int]:
    ids = sorted(set(topic_ids))
    known = {t.id for t in await repo.list_rows(session, Topic, Topic.id.in_(ids))} if ids else set()
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidInput(f"unknown topics {missing}", details={"field": "topic_ids", "missing": missing})
    return ids


async def _topics_extra(session: SessionDep, contact: Contact) -> dict[str, Any]:
    return {"topic_ids": (await repo.topic_ids_of_contacts(session, [contact.id]))[contact.id]}


async def _update_contact(
    session: SessionDep, user_id: IdPath, contact: Contact, changes: dict[str, Any], topic_ids: list[int] | None
) -> Contact:
    before = await _topics_extra(session, contact)
    if topic_ids is not None:
        await repo.set_contact_topics(session, contact.id, topic_ids)

    async def extra(c: Contact) -> dict[str, Any]:
        return await _topics_extra(session, c)

    return await crud.update(session, user_id, "contact", contact, changes, before_extra=before, after_extra=extra)


@router.get("/contacts", response_model=list[ContactOut], summary="The directory, by name")
async def list_contacts(
    _: AnyUser,
    session: SessionDep,
    topic_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only specialists of this topic")] = None,
    active: Annotated[bool | None, Query()] = None,
) -> list[ContactOut]:
    contacts = await repo.contacts(session, topic_id=topic_id, active=active)
    topics = await repo.topic_ids_of_contacts(session, [c.id for c in contacts])
    return [_contact_out(c, topics[c.id]) for c in contacts]


@router.get("/contacts/{contact_id}", response_model=ContactOut, summary="One specialist with their topics")
async def get_contact(contact_id: IdPath, _: AnyUser, session: SessionDep) -> ContactOut:
    contact = await crud.get_or_404(session, Contact, contact_id, "contact")
    return _contact_out(contact, (await repo.topic_ids_of_contacts(session, [contact_id]))[contact_id])


@router.post("/contacts", response_model=ContactOut, status_code=201, summary="Add a specialist")
async def create_contact(body: ContactCreate, principal: AdminOnly, session: SessionDep) -> ContactOut:
    topic_ids = await _check_topics(session, body.topic_ids)
    contact = Contact(**body.model_dump(exclude={"topic_ids"}))
    session.add(contact)
    await session.flush()
    await repo.set_contact_topics(session, contact.id, topic_ids)

    async def extra(c: Contact) -> dict[str, Any]:
        return await _topics_extra(session, c)

    await crud.create(session, principal.user_id, "contact", contact, extra=extra)
    return _contact_out(contact, topic_ids)


@router.patch("/contacts/{contact_id}", response_model=ContactOut, summary="Change a specialist or their topics")
async def update_contact(
    contact_id: IdPath, body: ContactUpdate, principal: AdminOnly, session: SessionDep
) -> ContactOut:
    contact = await crud.get_or_404(session, Contact, contact_id, "contact")
    changes = body.model_dump(exclude_unset=True, exclude={"topic_ids"})
    crud.refuse_nulls(Contact, changes)
    topic_ids = None
    if "topic_ids" in body.model_fields_set:
        topic_ids = await _check_topics(session, body.topic_ids or [])
    await _update_contact(session, principal.user_id, contact, changes, topic_ids)
    return _contact_out(contact, (await repo.topic_ids_of_contacts(session, [contact_id]))[contact_id])


@router.delete("/contacts/{contact_id}", status_code=204, summary="Remove a specialist from the directory")
async def delete_contact(contact_id: IdPath, principal: AdminOnly, session: SessionDep) -> Response:
    contact = await crud.get_or_404(session, Contact, contact_id, "contact")
    await crud.delete(session, principal.user_id, "contact", contact, extra=await _topics_extra(session, contact))
    return Response(status_code=204)


# --- prepared answers -----------------------------------------------------------------------------------------


async def _topic_exists(session: SessionDep, topic_id: IdPath) -> None:
    if await repo.get(session, Topic, topic_id) is None:
        raise InvalidInput(f"there is no topic {topic_id}", details={"field": "topic_id"})


@router.get("/prepared-answers", response_model=list[AnswerOut], summary="Prepared answers, by topic and title")
async def list_answers(
    _: AnyUser, session: SessionDep, topic_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[PreparedAnswer]:
    where = [PreparedAnswer.topic_id == topic_id] if topic_id is not None else []
    order = (PreparedAnswer.topic_id, PreparedAnswer.title, PreparedAnswer.id)
    return list(await repo.list_rows(session, PreparedAnswer, *where, order_by=order))


@router.get("/prepared-answers/{answer_id}", response_model=AnswerOut, summary="One prepared answer")
async def get_answer(answer_id: IdPath, _: AnyUser, session: SessionDep) -> PreparedAnswer:
    return await crud.get_or_404(session, PreparedAnswer, answer_id, "prepared answer")


@router.post("/prepared-answers", response_model=AnswerOut, status_code=201, summary="Write a prepared answer")
async def create_answer(body: AnswerCreate, principal: AdminOnly, session: SessionDep) -> PreparedAnswer:
    await _topic_exists(session, body.topic_id)
    return await crud.create(session, principal.user_id, "prepared_answer", PreparedAnswer(**body.model_dump()))


@router.patch("/prepared-answers/{answer_id}", response_model=AnswerOut, summary="Change a prepared answer")
async def update_answer(
    answer_id: IdPath, body: AnswerUpdate, principal: AdminOnly, session: SessionDep
) -> PreparedAnswer:
    answer = await crud.get_or_404(session, PreparedAnswer, answer_id, "prepared answer")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("topic_id") is not None:
        await _topic_exists(session, changes["topic_id"])
    return await crud.update(session, principal.user_id, "prepared_answer", answer, changes)


@router.delete("/prepared-answers/{answer_id}", status_code=204, summary="Delete a prepared answer")
async def delete_answer(answer_id: IdPath, principal: AdminOnly, session: SessionDep) -> Response:
    answer = await crud.get_or_404(session, PreparedAnswer, answer_id, "prepared answer")
    await crud.delete(session, principal.user_id, "prepared_answer", answer)
    return Response(status_code=204)


# --- scripts --------------------------------------------------------------------------------------------------


@router.get("/scripts", response_model=list[ScriptOut], summary="Scripts: the default (line_id null) and per line")
async def list_scripts(_: AnyUser, session: SessionDep) -> list[Script]:
    return list(await repo.list_rows(session, Script, order_by=(Script.line_id.is_not(None), Script.line_id)))


@router.get("/scripts/{script_id}", response_model=ScriptOut, summary="One script")
async def get_script(script_id: IdPath, _: AnyUser, session: SessionDep) -> Script:
    return await crud.get_or_404(session, Script, script_id, "script")


@router.post("/scripts", response_model=ScriptOut, status_code=201, summary="Write the default or a line's script")
async def create_script(body: ScriptCreate, principal: AdminOnly, session: SessionDep) -> Script:
    if body.line_id is not None and await repo.get(session, Line, body.line_id) is None:
        raise InvalidInput(f"there is no line {body.line_id}", details={"field": "line_id"})
    where = Script.line_id.is_(None) if body.line_id is None else Script.line_id == body.line_id
    if await repo.exists(session, Script, where):
        which = "the default" if body.line_id is None else f"line {body.line_id}"
        raise Conflict(f"{which} already has a script; change that one", details={"field": "line_id"})
    return await crud.create(session, principal.user_id, "script", Script(**body.model_dump()))


@router.patch("/scripts/{script_id}", response_model=ScriptOut, summary="Change a script's texts")
async def update_script(script_id: IdPath, body: ScriptUpdate, principal: AdminOnly, session: SessionDep) -> Script:
    script = await crud.get_or_404(session, Script, script_id, "script")
    return await crud.update(session, principal.user_id, "script", script, body.model_dump(exclude_unset=True))


@router.delete("/scripts/{script_id}", status_code=204, summary="Delete a script")
async def delete_script(script_id: IdPath, principal: AdminOnly, session: SessionDep) -> Response:
    script = await crud.get_or_404(session, Script, script_id, "script")
    await crud.delete(session, principal.user_id, "script", script)
    return Response(status_code=204)
