"""Creating users: validation of what a person typed, then the repository."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from hotline.auth.passwords import hash_password
from hotline.db.models import ROLES, User
from hotline.db.repositories import users as users_repo
from hotline.errors import Conflict, InvalidInput

USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
DEVICE = re.compile(r"^(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@/-]{1,80}$")


def validate_username(username: str) -> str:
    if not USERNAME.match(username):
        raise InvalidInput(
            "A username is 2-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter.",
            details={"field": "username"},
        )
    return username


def validate_device(device: str | None) -> str | None:
    if device is not None and not DEVICE.match(device):
        raise InvalidInput(
            "A device is an Asterisk interface such as PJSIP/op101 or Local/101@phones/n.",
            details={"field": "device"},
        )
    return device


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    full_name: str = "",
    device: str | None = None,
) -> User:
    validate_username(username)
    validate_device(device)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", details={"field": "role"})
    if await users_repo.get_by_username(session, username) is not None:
        raise Conflict(f"a user named {username!r} already exists", details={"field": "username"})
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "password"}) from exc
    user = User(username=username, full_name=full_name, role=role, device=device, password_hash=password_hash)
    return await users_repo.add(session, user)
