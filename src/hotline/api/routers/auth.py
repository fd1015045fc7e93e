"""Sign in, sign out, who am I."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.schemas.auth import LoginIn, TokenOut, UserOut
from hotline.api.security import AnyUser, forget_after_commit
from hotline.auth.passwords import verify_password
from hotline.auth.tokens import new_token, token_hash
from hotline.db.models import ApiToken, User
from hotline.db.repositories import users as users_repo
from hotline.errors import NotAuthenticated, TooManyAttempts

router = APIRouter(prefix="/api", tags=["auth"])

# Verified when the username is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$N9X1jI5Cq0O5t2x8sT8z3m7A0m3y0l7e2o7n5o5w0pE"


def _verify(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        with contextlib.suppress(Exception):
            verify_password(password, _DUMMY_HASH)
        return False
    return verify_password(password, password_hash)


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, full_name=user.full_name, role=user.role, device=user.device)


@router.post("/auth/login", response_model=TokenOut, summary="Exchange a username and password for a bearer token")
async def login(body: LoginIn, request: Request, session: SessionDep, runtime: RuntimeDep) -> TokenOut:
    limiter = runtime.login_limiter
    keys = (f"user:{body.username.lower()}", f"addr:{request.client.host if request.client else '?'}")
    wait = limiter.retry_after(*keys)
    if wait is not None:
        raise TooManyAttempts(
            f"Too many failed sign-ins; try again in {int(wait) + 1} s.", details={"retry_after_s": int(wait) + 1}
        )
    user = await users_repo.get_by_username(session, body.username)
    valid = _verify(body.password, user.password_hash if user else None)
    if user is None or not valid or not user.active:
        limiter.failed(*keys)
        raise NotAuthenticated("Wrong username or password.")
    limiter.succeeded(*keys)
    token = new_token()
    expires_at = datetime.now(UTC) + timedelta(hours=runtime.settings.token_ttl_hours)
    await users_repo.add_token(session, ApiToken(user_id=user.id, token_hash=token_hash(token), expires_at=expires_at))
    return TokenOut(access_token=token, expires_at=expires_at, user=_user_out(user))


@router.post("/auth/logout", status_code=204, summary="Revoke the token used for this request")
async def logout(principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> None:
    token = await session.get(ApiToken, principal.token_id)
    if token is not None:
        token.revoked_at = datetime.now(UTC)
    forget_after_commit(session, runtime, token_id=principal.token_id)


@router.get("/me", response_model=UserOut, summary="The signed-in user")
async def me(principal: AnyUser, session: SessionDep) -> UserOut:
    user = await users_repo.get(session, principal.user_id)
    if user is None:
        raise NotAuthenticated("This user no longer exists.")
    return _user_out(user)
