"""Who is calling the API: bearer token -> user; each endpoint declares the roles it admits."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hotline.api.deps import SessionDep
from hotline.auth.tokens import token_hash
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

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


async def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise NotAuthenticated("Sign in first: send 'Authorization: Bearer <token>' from POST /api/auth/login.")
    found = await users_repo.user_for_token(session, token_hash(credentials.credentials), datetime.now(UTC))
    if found is None:
        raise NotAuthenticated("The token is unknown, expired or revoked; sign in again.")
    user, token = found
    principal = Principal(user_id=user.id, username=user.username, role=user.role, token_id=token.id)
    request.state.principal = principal
    return principal


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
