"""Users: operators, supervisors, admins. Passwords are set and reset here and never returned nor audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import IdPath
from hotline.api.schemas.admin import PasswordSet, UserCreate, UserOut, UserUpdate
from hotline.api.security import AdminOnly, Staff, forget_after_commit
from hotline.auth.passwords import hash_password
from hotline.db.models import User
from hotline.db.repositories import admin as repo
from hotline.errors import Conflict, InvalidInput
from hotline.services import admin_crud as crud
from hotline.services import audit
from hotline.users import create_user, validate_device

router = APIRouter(prefix="/api/admin/users", tags=["admin: users"])


async def _keep_an_admin(
    session: SessionDep, user: User, *, role: str | None, active: bool | None, deleting: bool
) -> None:
    """Refuse the change that would leave no active admin: nobody could administer the hotline any more."""
    if user.role != "admin" or not user.active:
        return
    leaving = deleting or (role is not None and role != "admin") or active is False
    if leaving and await repo.active_admins_other_than(session, user.id) == 0:
        raise Conflict("this is the last active admin; make another admin first", details={"user_id": user.id})


@router.get("", response_model=list[UserOut], summary="Users, by username")
async def list_users(
    _: Staff, session: SessionDep, role: Annotated[str | None, Query(pattern="^(admin|supervisor|operator)$")] = None
) -> list[User]:
    where = [User.role == role] if role else []
    return list(await repo.list_rows(session, User, *where, order_by=(User.username,)))


@router.get("/{user_id}", response_model=UserOut, summary="One user")
async def get_user(user_id: IdPath, _: Staff, session: SessionDep) -> User:
    return await crud.get_or_404(session, User, user_id, "user")


@router.post("", response_model=UserOut, status_code=201, summary="Create a user with an initial password")
async def create(body: UserCreate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep) -> User:
    user = await create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        full_name=body.full_name,
        device=body.device,
    )
    user.active = body.active
    await repo.save(session, user)
    await audit.record(
        session,
        user_id=principal.user_id,
        action=audit.CREATE,
        entity="user",
        entity_id=user.id,
        before=None,
        after=audit.snapshot(user),
    )
    crud.config_changed(session, runtime, "user")
    return user


@router.patch("/{user_id}", response_model=UserOut, summary="Change a user's name, role, device or active flag")
async def update(
    user_id: IdPath, body: UserUpdate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> User:
    user = await crud.get_or_404(session, User, user_id, "user")
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(User, changes)
    if "device" in changes:
        validate_device(changes["device"])
    await _keep_an_admin(session, user, role=changes.get("role"), active=changes.get("active"), deleting=False)
    await crud.update(session, principal.user_id, "user", user, changes)
    if changes.get("active") is False:
        await repo.revoke_tokens(session, user.id, datetime.now(UTC), keep_token_id=None)
    forget_after_commit(session, runtime, user_id=user.id)  # role, active: what their next request is allowed
    crud.config_changed(session, runtime, "user")
    return user


@router.put("/{user_id}/password", status_code=204, summary="Set or reset a user's password")
async def set_password(
    user_id: IdPath, body: PasswordSet, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The user's other sessions are signed out (the admin's own current token survives a self-reset). The audit
    entry says the password changed, never what it is or its hash."""
    user = await crud.get_or_404(session, User, user_id, "user")
    try:
        new_hash = hash_password(body.password)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "password"}) from exc
    await crud.update(
        session, principal.user_id, "user", user, {"password_hash": new_hash}, after_extra=_password_changed, force=True
    )
    keep = principal.token_id if principal.user_id == user.id else None
    await repo.revoke_tokens(session, user.id, datetime.now(UTC), keep_token_id=keep)
    forget_after_commit(session, runtime, user_id=user.id)
    return Response(status_code=204)


async def _password_changed(_user: User) -> dict[str, object]:
    return {"password_changed": True}


@router.delete("/{user_id}", status_code=204, summary="Delete a user")
async def delete(user_id: IdPath, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Their registrations and audit entries stay (author set to null); their shifts and assignments go. Prefer
    deactivating (``active=false``) someone who took calls: reports keep their name either way."""
    user = await crud.get_or_404(session, User, user_id, "user")
    if user.id == principal.user_id:
        raise Conflict("you cannot delete yourself", details={"user_id": user_id})
    await _keep_an_admin(session, user, role=None, active=None, deleting=True)
    await crud.delete(session, principal.user_id, "user", user)
    forget_after_commit(session, runtime, user_id=user.id)
    crud.config_changed(session, runtime, "user")
    return Response(status_code=204)
