"""Carriers' tariffs per line, dated (a new contract is a new row from its date), and comparison offers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from hotline.api.deps import SessionDep
from hotline.api.params import MAX_ID, IdPath
from hotline.api.schemas.admin import TariffCreate, TariffOut, TariffUpdate
from hotline.api.security import AdminOnly, Staff
from hotline.db.models import Line, Tariff
from hotline.db.repositories import admin as repo
from hotline.errors import InvalidInput
from hotline.services import admin_crud as crud

router = APIRouter(prefix="/api/admin/tariffs", tags=["admin: tariffs"])


async def _line_exists(session: SessionDep, line_id: int | None) -> None:
    if line_id is not None and await repo.get(session, Line, line_id) is None:
        raise InvalidInput(f"there is no line {line_id}", details={"field": "line_id"})


@router.get("", response_model=list[TariffOut], summary="Tariffs by line and date")
async def list_tariffs(
    _: Staff, session: SessionDep, line_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[Tariff]:
    where = [Tariff.line_id == line_id] if line_id is not None else []
    return list(await repo.list_rows(session, Tariff, *where, order_by=(Tariff.line_id, Tariff.valid_from, Tariff.id)))


@router.get("/{tariff_id}", response_model=TariffOut, summary="One tariff")
async def get_tariff(tariff_id: IdPath, _: Staff, session: SessionDep) -> Tariff:
    return await crud.get_or_404(session, Tariff, tariff_id, "tariff")


@router.post("", response_model=TariffOut, status_code=201, summary="Add a tariff")
async def create_tariff(body: TariffCreate, principal: AdminOnly, session: SessionDep) -> Tariff:
    await _line_exists(session, body.line_id)
    return await crud.create(session, principal.user_id, "tariff", Tariff(**body.model_dump()))


@router.patch("/{tariff_id}", response_model=TariffOut, summary="Change a tariff")
async def update_tariff(tariff_id: IdPath, body: TariffUpdate, principal: AdminOnly, session: SessionDep) -> Tariff:
    tariff = await crud.get_or_404(session, Tariff, tariff_id, "tariff")
    changes = body.model_dump(exclude_unset=True)
    await _line_exists(session, changes.get("line_id"))
    return await crud.update(session, principal.user_id, "tariff", tariff, changes)


@router.delete("/{tariff_id}", status_code=204, summary="Delete a tariff")
async def delete_tariff(tariff_id: IdPath, principal: AdminOnly, session: SessionDep) -> Response:
    tariff = await crud.get_or_404(session, Tariff, tariff_id, "tariff")
    await crud.delete(session, principal.user_id, "tariff", tariff)
    return Response(status_code=204)
