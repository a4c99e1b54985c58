"""One-time login links: the bot hands a user a link, the web app redeems it for their account.
Each works once and only until it expires; only its hash is stored."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.tokens import TOKEN_PREFIX, hash_token, new_token
from db import audit
from db.errors import AuthenticationFailed
from db.models import LoginLink, User
from db.types import utcnow

LINK_PREFIX = TOKEN_PREFIX + "link_"  # masked in logs like every token (db.redaction)


class LoginLinks:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, user: User, ttl: timedelta) -> str:
        """A new link token for `user`, valid for `ttl`; shown this once."""
        if ttl <= timedelta(0):
            raise ValueError("a login link must be valid for some time")
        token = new_token(LINK_PREFIX)
        async with self.sessions() as session:
            session.add(LoginLink(user_id=user.id, token_hash=hash_token(token), expires_at=utcnow() + ttl))
            await session.commit()
        return token

    async def redeem(self, token: str) -> User:
        """The link's user, and the link used up; refused when unknown, used already or expired."""
        now = utcnow()
        token_hash = hash_token(token)
        async with self.sessions() as session:
            taken = await session.execute(
                update(LoginLink)
                .where(LoginLink.token_hash == token_hash, LoginLink.used_at.is_(None), LoginLink.expires_at > now)
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                raise AuthenticationFailed("That login link is not valid: it may be used already or expired. "
                                           "Ask the bot for a new one.")
            user_id = await session.scalar(select(LoginLink.user_id).where(LoginLink.token_hash == token_hash))
            user = await session.get(User, user_id)
            audit.record(session, actor="user", action="user.login_link", user_id=user_id)
            await session.commit()
        return user


async def purge_spent(session: AsyncSession) -> int:
    """Deletes links used already or expired; how many went."""
    spent = or_(LoginLink.used_at.is_not(None), LoginLink.expires_at <= utcnow())
    query = delete(LoginLink).where(spent).execution_options(synchronize_session=False)
    return (await session.execute(query)).rowcount
