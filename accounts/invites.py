"""Invite codes for CLAWFLEET_ACCESS=invite: made by the operator (`clawfleet invites create`),
each redeemed once by the person it lets in. Only the codes' hashes are stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.tokens import hash_token, new_token
from db import audit
from db.errors import InvalidInput
from db.models import Invite, User
from db.types import utcnow

CODE_PREFIX = "inv-"


class Invites:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, count: int, valid_for: timedelta | None) -> list[str]:
        """New codes, shown this once."""
        codes = [new_token(CODE_PREFIX, 12) for _ in range(count)]
        expires_at = utcnow() + valid_for if valid_for else None
        async with self.sessions() as session:
            session.add_all(Invite(code_hash=hash_token(code), expires_at=expires_at) for code in codes)
            await session.commit()
        return codes

    async def redeem(self, user: User, code: str) -> None:
        """Let `user` in with `code`: one use, before it expires. Refusals say why."""
        async with self.sessions() as session:
            await take(session, user, code)
            await session.commit()

    async def usable(self, code: str) -> bool:
        """Whether `code` would be accepted now: a read, so a wrong code costs no write."""
        async with self.sessions() as session:
            return bool(await session.scalar(select(exists().where(_usable(code, utcnow())))))

    async def is_invited(self, user: User) -> bool:
        async with self.sessions() as session:
            return bool(await session.scalar(select(exists().where(Invite.used_by == user.id))))


async def take(session: AsyncSession, user: User, code: str) -> None:
    """Use `code` for `user` in the caller's transaction (InvalidInput when it is not valid), so
    an account made for the code is stored only together with it."""
    now = utcnow()
    taken = await session.execute(
        update(Invite)
        .where(_usable(code, now))
        .values(used_by=user.id, used_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise not_usable()
    audit.record(session, actor="user", action="user.invite_redeemed", user_id=user.id)


def not_usable() -> InvalidInput:
    return InvalidInput("That invite code is not valid: it may be mistyped, used already or expired.",
                        field="invite")


def _usable(code: str, now: datetime) -> ColumnElement[bool]:
    return and_(Invite.code_hash == hash_token(code), Invite.used_at.is_(None),
                Invite.expires_at.is_(None) | (Invite.expires_at > now))
