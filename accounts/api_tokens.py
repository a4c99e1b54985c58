"""A user's named API tokens: listed, made (shown once) and revoked. Who may: a session (a
login, or the dashboard's cookie) always, an API token only when it was made with the right to
manage tokens, so a token handed to a script cannot mint itself successors."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import tokens
from accounts.tokens import Credential, IssuedToken
from db import audit
from db.errors import AccessDenied, Conflict, InvalidInput, NotFound
from db.leases import lock_for_transaction
from db.models import ApiToken, User

API = "api"
MAX_TOKENS_PER_USER = 50
TOKENS_LOCK = "api-tokens"  # creations decide one after another, so creations at once keep the cap
MAX_NAME_LENGTH = 100


class ApiTokens:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def list(self, user: User) -> list[ApiToken]:
        async with self.sessions() as session:
            rows = await session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.kind == API)
                                         .order_by(ApiToken.created_at))
            return list(rows)

    async def create(self, caller: Credential, name: object, *, can_manage_tokens: bool = False) -> IssuedToken:
        _check_may_manage(caller)
        name = _valid_name(name)
        user = caller.user
        async with self.sessions() as session:
            await lock_for_transaction(session, TOKENS_LOCK)
            owned = await session.scalar(select(func.count()).select_from(ApiToken)
                                         .where(ApiToken.user_id == user.id, ApiToken.kind == API))
            if owned >= MAX_TOKENS_PER_USER:
                raise Conflict(f"You have {MAX_TOKENS_PER_USER} API tokens, the most one account may have: "
                               "revoke one you no longer use first.")
            issued = tokens.issue(session, user, kind=API, name=name)
            issued.record.can_manage_tokens = bool(can_manage_tokens)
            audit.record(session, actor="user", action="token.create", user_id=user.id,
                         details={"token_id": str(issued.record.id), "can_manage_tokens": bool(can_manage_tokens)})
            await session.commit()
        return issued

    async def revoke(self, caller: Credential, token_id: uuid.UUID | str) -> None:
        """Someone else's token, a session and an id that is none answer alike: not found."""
        _check_may_manage(caller)
        key = _as_uuid(token_id)
        async with self.sessions() as session:
            record = await session.get(ApiToken, key) if key else None
            if record is None or record.user_id != caller.user.id or record.kind != API:
                raise NotFound("No such API token.")
            await session.delete(record)
            audit.record(session, actor="user", action="token.revoke", user_id=caller.user.id,
                         details={"token_id": str(record.id)})
            await session.commit()


def may_manage_tokens(caller: Credential) -> bool:
    return caller.token.kind == "session" or caller.token.can_manage_tokens


def _check_may_manage(caller: Credential) -> None:
    if not may_manage_tokens(caller):
        raise AccessDenied("This API token may not create or revoke tokens: log in, or use a token made "
                           "with can_manage_tokens.")


def _valid_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
        raise InvalidInput(f"Name the token: 1 to {MAX_NAME_LENGTH} characters.", field="name")
    return name.strip()


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None
