"""A line's hours: weekly ranges, campaigns (dated periods with their own weekly ranges) and exceptions.

Every change is validated by building the line's domain ``Schedule`` after it, inside the transaction: overlapping
campaigns or exceptions, empty ranges, a 24/7 line given weekly ranges all come back as 422 ``invalid-schedule``
with the domain's message, and the change (and its audit entry) rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Response

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import IdPath
from hotline.api.schemas.admin import (
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    ExceptionCreate,
    ExceptionOut,
    ExceptionUpdate,
    TimeRangeIn,
    WeeklyRangeIn,
    WeeklyRangeOut,
    WeeklyRangeUpdate,
)
from hotline.api.security import AdminOnly, Staff
from hotline.db.models import Campaign, HoursException, Line, WeeklyHours
from hotline.db.repositories import admin as repo
from hotline.errors import InvalidInput, NotFound
from hotline.services import admin_crud as crud
from hotline.services.audit import json_value
from hotline.services.schedules import schedule_for_line

router = APIRouter(prefix="/api/admin/lines/{line_id}", tags=["admin: hours"])


async def _line(session: SessionDep, line_id: IdPath) -> Line:
    return await crud.get_or_404(session, Line, line_id, "line")


async def _validated(session: SessionDep, runtime: RuntimeDep, line_id: IdPath, entity: str) -> None:
    await schedule_for_line(session, line_id)
    crud.config_changed(session, runtime, entity)


def _range_out(row: WeeklyHours) -> WeeklyRangeOut:
    return WeeklyRangeOut(id=row.id, weekday=row.weekday, start=row.start_time, end=row.end_time)


# --- weekly ranges --------------------------------------------------------------------------------------------


async def _weekly_row(session: SessionDep, line_id: IdPath, range_id: IdPath) -> WeeklyHours:
    row = await repo.get(session, WeeklyHours, range_id)
    if row is None or row.line_id != line_id or row.campaign_id is not None:
        raise NotFound(f"No weekly range {range_id} on line {line_id}.", details={"id": range_id})
    return row


@router.get("/hours", response_model=list[WeeklyRangeOut], summary="The line's weekly opening ranges")
async def list_hours(line_id: IdPath, _: Staff, session: SessionDep) -> list[WeeklyRangeOut]:
    await _line(session, line_id)
    return [_range_out(r) for r in await repo.weekly_rows(session, line_id)]


@router.post("/hours", response_model=WeeklyRangeOut, status_code=201, summary="Add a weekly opening range")
async def add_hours(
    line_id: IdPath, body: WeeklyRangeIn, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> WeeklyRangeOut:
    await _line(session, line_id)
    row = WeeklyHours(line_id=line_id, weekday=body.weekday, start_time=body.start, end_time=body.end)
    await crud.create(session, principal.user_id, "weekly_hours", row)
    await _validated(session, runtime, line_id, "weekly_hours")
    return _range_out(row)


@router.put("/hours", response_model=list[WeeklyRangeOut], summary="Replace the whole week at once")
async def replace_hours(
    line_id: IdPath, body: list[WeeklyRangeIn], principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> list[WeeklyRangeOut]:
    """Ranges already present (same weekday, start, end) are kept; the others are deleted or added, each with
    its own audit entry. Use it to move hours without passing through an invalid intermediate week."""
    await _line(session, line_id)
    wanted = {(r.weekday, r.start, r.end) for r in body}
    existing = {}
    for row in await repo.weekly_rows(session, line_id):
        key = (row.weekday, row.start_time, row.end_time)
        if key in wanted and key not in existing:
            existing[key] = row
        else:
            await crud.delete(session, principal.user_id, "weekly_hours", row)
    for weekday, start, end in sorted(wanted - existing.keys()):
        row = WeeklyHours(line_id=line_id, weekday=weekday, start_time=start, end_time=end)
        await crud.create(session, principal.user_id, "weekly_hours", row)
    await _validated(session, runtime, line_id, "weekly_hours")
    return [_range_out(r) for r in await repo.weekly_rows(session, line_id)]


@router.patch("/hours/{range_id}", response_model=WeeklyRangeOut, summary="Change a weekly range")
async def update_hours(
    line_id: IdPath,
    range_id: IdPath,
    body: WeeklyRangeUpdate,
    principal: AdminOnly,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WeeklyRangeOut:
    row = await _weekly_row(session, line_id, range_id)
    names = {"weekday": "weekday", "start": "start_time", "end": "end_time"}
    changes = {names[k]: v for k, v in body.model_dump(exclude_unset=True).items()}
    await crud.update(session, principal.user_id, "weekly_hours", row, changes)
    await _validated(session, runtime, line_id, "weekly_hours")
    return _range_out(row)


@router.delete("/hours/{range_id}", status_code=204, summary="Remove a weekly range")
async def delete_hours(
    line_id: IdPath, range_id: IdPath, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> Response:
    row = await _weekly_row(session, line_id, range_id)
    await crud.delete(session, principal.user_id, "weekly_hours", row)
    await _validated(session, runtime, line_id, "weekly_hours")
    return Response(status_code=204)


# --- campaigns ------------------------------------------------------------------------------------------------


def _ranges_json(rows: Sequence[WeeklyHours]) -> list[dict[str, object]]:
    return [{"weekday": r.weekday, "start": json_value(r.start_time), "end": json_value(r.end_time)} for r in rows]


async def _campaign(session: SessionDep, line_id: IdPath, campaign_id: IdPath) -> Campaign:
    row = await repo.get(session, Campaign, campaign_id)
    if row is None or row.line_id != line_id:
        raise NotFound(f"No campaign {campaign_id} on line {line_id}.", details={"id": campaign_id})
    return row


async def _campaign_out(session: SessionDep, campaign: Campaign) -> CampaignOut:
    ranges = (await repo.campaign_ranges(session, [campaign.id]))[campaign.id]
    return CampaignOut(
        id=campaign.id,
        line_id=campaign.line_id,
        name=campaign.name,
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        ranges=[_range_out(r) for r in ranges],
    )


async def _set_campaign_ranges(session: SessionDep, campaign: Campaign, ranges: list[WeeklyRangeIn]) -> None:
    await repo.delete_campaign_ranges(session, campaign.id)
    session.add_all(
        WeeklyHours(
            line_id=campaign.line_id, campaign_id=campaign.id, weekday=r.weekday, start_time=r.start, end_time=r.end
        )
        for r in ranges
    )
    await session.flush()


async def _campaign_extra(session: SessionDep, campaign: Campaign) -> dict[str, object]:
    return {"ranges": _ranges_json((await repo.campaign_ranges(session, [campaign.id]))[campaign.id])}


@router.get("/campaigns", response_model=list[CampaignOut], summary="The line's campaigns")
async def list_campaigns(line_id: IdPath, _: Staff, session: SessionDep) -> list[CampaignOut]:
    await _line(session, line_id)
    return [await _campaign_out(session, c) for c in await repo.campaigns_of(session, line_id)]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, summary="One campaign")
async def get_campaign(line_id: IdPath, campaign_id: IdPath, _: Staff, session: SessionDep) -> CampaignOut:
    return await _campaign_out(session, await _campaign(session, line_id, campaign_id))


@router.post("/campaigns", response_model=CampaignOut, status_code=201, summary="Add a campaign with its ranges")
async def create_campaign(
    line_id: IdPath, body: CampaignCreate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> CampaignOut:
    await _line(session, line_id)
    campaign = Campaign(line_id=line_id, name=body.name, start_date=body.start_date, end_date=body.end_date)
    _check_dates(body.start_date, body.end_date)
    session.add(campaign)
    await session.flush()
    await _set_campaign_ranges(session, campaign, body.ranges)

    async def extra(c: Campaign) -> dict[str, object]:
        return await _campaign_extra(session, c)

    await crud.create(session, principal.user_id, "campaign", campaign, extra=extra)
    await _validated(session, runtime, line_id, "campaign")
    return await _campaign_out(session, campaign)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut, summary="Change a campaign")
async def update_campaign(
    line_id: IdPath,
    campaign_id: IdPath,
    body: CampaignUpdate,
    principal: AdminOnly,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CampaignOut:
    campaign = await _campaign(session, line_id, campaign_id)
    changes = body.model_dump(exclude_unset=True, exclude={"ranges"})
    crud.refuse_nulls(Campaign, changes)
    _check_dates(changes.get("start_date", campaign.start_date), changes.get("end_date", campaign.end_date))
    before = await _campaign_extra(session, campaign)
    if "ranges" in body.model_fields_set:
        if body.ranges is None:
            raise InvalidInput(
                "ranges cannot be null; send [] for a campaign closed all along", details={"field": "ranges"}
            )
        await _set_campaign_ranges(session, campaign, body.ranges)

    async def extra(c: Campaign) -> dict[str, object]:
        return await _campaign_extra(session, c)

    await crud.update(session, principal.user_id, "campaign", campaign, changes, before_extra=before, after_extra=extra)
    await _validated(session, runtime, line_id, "campaign")
    return await _campaign_out(session, campaign)


@router.delete("/campaigns/{campaign_id}", status_code=204, summary="Delete a campaign and its ranges")
async def delete_campaign(
    line_id: IdPath, campaign_id: IdPath, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> Response:
    campaign = await _campaign(session, line_id, campaign_id)
    extra = await _campaign_extra(session, campaign)
    await repo.delete_campaign_ranges(session, campaign.id)
    await crud.delete(session, principal.user_id, "campaign", campaign, extra=extra)
    await _validated(session, runtime, line_id, "campaign")
    return Response(status_code=204)


def _check_dates(start: object, end: object) -> None:
    if start is not None and end is not None and end < start:  # type: ignore[operator]
        raise InvalidInput(f"the period ends ({end}) before it starts ({start})", details={"field": "end_date"})


# --- exceptions -----------------------------------------------------------------------------------------------


def _exception_ranges(ranges: list[TimeRangeIn]) -> list[dict[str, str]]:
    return [
        {
            "start": r.start.isoformat("minutes" if not r.start.second else "seconds"),
            "end": r.end.isoformat("minutes" if not r.end.second else "seconds"),
        }
        for r in ranges
    ]


def _closed(closed: bool | None, ranges: list[dict[str, str]]) -> bool:
    """``closed`` defaults from the ranges; a contradiction is refused rather than guessed."""
    if closed is None:
        return not ranges
    if closed and ranges:
        raise InvalidInput(
            "a closed exception has no ranges; send closed=false with special hours", details={"field": "ranges"}
        )
    if not closed and not ranges:
        raise InvalidInput("an open exception needs its special hours in ranges", details={"field": "ranges"})
    return closed


async def _exception(session: SessionDep, line_id: IdPath, exception_id: IdPath) -> HoursException:
    row = await repo.get(session, HoursException, exception_id)
    if row is None or row.line_id != line_id:
        raise NotFound(f"No exception {exception_id} on line {line_id}.", details={"id": exception_id})
    return row


@router.get("/exceptions", response_model=list[ExceptionOut], summary="The line's exceptions (holidays, special days)")
async def list_exceptions(line_id: IdPath, _: Staff, session: SessionDep) -> list[HoursException]:
    await _line(session, line_id)
    return list(await repo.exceptions_of(session, line_id))


@router.post("/exceptions", response_model=ExceptionOut, status_code=201, summary="Add an exception")
async def create_exception(
    line_id: IdPath, body: ExceptionCreate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> HoursException:
    await _line(session, line_id)
    ranges = _exception_ranges(body.ranges)
    end_date = body.end_date or body.start_date
    _check_dates(body.start_date, end_date)
    row = HoursException(
        line_id=line_id,
        start_date=body.start_date,
        end_date=end_date,
        reason=body.reason,
        closed=_closed(body.closed, ranges),
        ranges=ranges,
    )
    await crud.create(session, principal.user_id, "hours_exception", row)
    await _validated(session, runtime, line_id, "hours_exception")
    return row


@router.patch("/exceptions/{exception_id}", response_model=ExceptionOut, summary="Change an exception")
async def update_exception(
    line_id: IdPath,
    exception_id: IdPath,
    body: ExceptionUpdate,
    principal: AdminOnly,
    session: SessionDep,
    runtime: RuntimeDep,
) -> HoursException:
    row = await _exception(session, line_id, exception_id)
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(HoursException, changes)
    if "ranges" in changes:
        changes["ranges"] = _exception_ranges(body.ranges or [])
    if changes.get("closed") is True and "ranges" not in changes:
        changes["ranges"] = []  # closing a special-hours day drops its hours
    ranges = changes.get("ranges", row.ranges or [])
    if "closed" in changes or "ranges" in changes:
        changes["closed"] = _closed(changes.get("closed"), ranges)
    _check_dates(changes.get("start_date", row.start_date), changes.get("end_date", row.end_date))
    await crud.update(session, principal.user_id, "hours_exception", row, changes)
    await _validated(session, runtime, line_id, "hours_exception")
    return row


@router.delete("/exceptions/{exception_id}", status_code=204, summary="Delete an exception")
async def delete_exception(
    line_id: IdPath, exception_id: IdPath, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> Response:
    row = await _exception(session, line_id, exception_id)
    await crud.delete(session, principal.user_id, "hours_exception", row)
    await _validated(session, runtime, line_id, "hours_exception")
    return Response(status_code=204)
