"""Who is calling the API: bearer token -> user; each endpoint declares the roles it admits.

A checked token is remembered for ``HOTLINE_AUTH_CACHE_S`` seconds (5 by default) by the process that checked it
(``runtime.principals``, see :mod:`hotline.auth.cache`), with the operator's lines, so most requests cost no SQL to
authenticate. Honest about revocation: logout, password resets, deactivation, role, user and line-assignment changes
made through this process forget the affected entries once they commit, so the next request is refused (or sees the
new role and lines) at once; the same change made through another ``hotline serve`` process reaches this one within
the cache's lifetime at most. An entry never outlives its token's expiry, and refusals are not remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.api.deps import RuntimeDep
from hotline.auth.tokens import token_hash
from hotline.bootstrap import Runtime
from hotline.db.after_commit import after_commit
from hotline.db.repositories import users as users_repo
from hotline.errors import Forbidden, NotAuthenticated

_bearer = HTTPBearer(auto_error=False, description="The token from POST /api/auth/login")

ADMIN = "admin"
SUPERVISOR = "supervisor"
OPERATOR = "operator"
ALL_ROLES = (ADMIN, SUPERVISOR, OPERATOR)
STAFF = (ADMIN, SUPERVISOR)


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str
    token_id: int
    #: The lines an operator serves, read with the token; None for staff, who see every line.
    line_ids: frozenset[int] | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


async def _look_up(runtime: Runtime, key: str) -> Principal:
    """The token's user and (for an operator) lines, from the database; remembered unless revoked meanwhile."""
    cache = runtime.principals
    generation = cache.generation
    now = datetime.now(UTC)
    async with runtime.sessions() as session:
        found = await users_repo.user_for_token(session, key, now)
        if found is None:
            raise NotAuthenticated("The token is unknown, expired or revoked; sign in again.")
        user, token = found
        lines = None if user.role in STAFF else frozenset(await users_repo.line_ids_of(session, user.id))
    principal = Principal(user_id=user.id, username=user.username, role=user.role, token_id=token.id, line_ids=lines)
    valid_for_s = (token.expires_at - now).total_seconds()
    cache.put(key, principal, user_id=user.id, token_id=token.id, valid_for_s=valid_for_s, generation=generation)
    return principal


async def current_principal(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise NotAuthenticated("Sign in first: send 'Authorization: Bearer <token>' from POST /api/auth/login.")
    principal = await principal_for_token(runtime, credentials.credentials)
    request.state.principal = principal
    return principal


async def principal_for_token(runtime: Runtime, token: str) -> Principal:
    """Who holds this token (remembered, or looked up); ``NotAuthenticated`` when it is unknown, expired or
    revoked. Shared by every request and by open WebSockets, which ask again every few seconds."""
    key = token_hash(token)
    principal: Principal | None = runtime.principals.get(key)
    if principal is None:
        principal = await _look_up(runtime, key)
    return principal


def forget_after_commit(
    session: AsyncSession,
    runtime: Runtime,
    *,
    user_id: int | None = None,
    token_id: int | None = None,
    everyone: bool = False,
) -> None:
    """Once this request's change to a user or token commits, drop what this process remembers of them, so the
    very next request sees the change (other processes see it when their entries expire)."""
    cache = runtime.principals

    async def forget() -> None:
        if token_id is not None:
            cache.forget_token(token_id)
        if user_id is not None:
            cache.forget_user(user_id)
        if everyone:
            cache.clear()

    after_commit(session, forget)


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only these roles; the roles are also recorded for the authorization walk test."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"This needs the role {' or '.join(roles)}; you are signed in as {principal.role}.",
                details={"required": list(roles)},
            )
        return principal

    dependency.hotline_roles = roles  # type: ignore[attr-defined]
    return dependency


AnyUser = Annotated[Principal, Depends(require(*ALL_ROLES))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
AdminOnly = Annotated[Principal, Depends(require(ADMIN))]
