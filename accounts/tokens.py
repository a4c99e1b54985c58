"""Bearer tokens (API tokens and login sessions) and the one way every secret we hand out is
hashed: tokens, login links and invite codes are stored as their hash only, and shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiToken, User
from db.read_cache import READ_CACHE_EXEMPT
from db.types import utcnow

TOKEN_PREFIX = "cf_"  # db.redaction masks anything that starts like this
SESSION_TTL = timedelta(days=30)
LAST_USED_EVERY = timedelta(minutes=1)  # a token's last use is written at most this often


def hash_token(token: str) -> str:
    """What is stored of a token, link or code handed to someone (surrounding blanks ignored)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def new_token(prefix: str = TOKEN_PREFIX, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    record: ApiToken


def issue(session: AsyncSession, user: User, *, kind: str, name: str) -> IssuedToken:
    """A new token of `kind` (`api`, or `session`: expires after SESSION_TTL), added to the session."""
    token = new_token()
    record = ApiToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=hash_token(token),
        prefix=token[:10],
        expires_at=utcnow() + SESSION_TTL if kind == "session" else None,
    )
    session.add(record)
    return IssuedToken(token, record)


@dataclass(frozen=True)
class Credential:
    """Who presented a token, and which token: its kind (`api` or `session`) and rights."""

    user: User
    token: ApiToken


async def stored_credential(session: AsyncSession, token_hash: str) -> Credential | None:
    """The token with this hash and its owner, as stored (expired or not)."""
    found = (await session.execute(  # one query for both: every API request asks this first
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == token_hash)
    )).first()
    return Credential(found[1], found[0]) if found is not None else None


def expired(record: ApiToken) -> bool:
    return record.expires_at is not None and record.expires_at < utcnow()


def use_is_due(record: ApiToken) -> bool:
    return record.last_used_at is None or record.last_used_at <= utcnow() - LAST_USED_EVERY


async def note_use(session: AsyncSession, record: ApiToken) -> None:
    """Notes a token's use, once a minute at most, not on every request. It changes nothing a
    cached credential answers for, so it leaves the read cache alone (db/read_cache.py)."""
    if not use_is_due(record):
        return
    now = utcnow()
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY)
    record.last_used_at = now  # first, so requests with the same cached record at once write once
    await session.execute(update(ApiToken).where(ApiToken.id == record.id, stale).values(last_used_at=now)
                          .execution_options(**{READ_CACHE_EXEMPT: True}))  # the where: other processes too
    await session.commit()


async def purge_expired(session: AsyncSession, *, user: User | None = None) -> int:
    """Deletes expired tokens (of `user` only, when given); how many went."""
    query = delete(ApiToken).where(ApiToken.expires_at < utcnow())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return (await session.execute(query.execution_options(synchronize_session=False))).rowcount


async def revoke(session: AsyncSession, token: str) -> None:
    await session.execute(delete(ApiToken).where(ApiToken.token_hash == hash_token(token)))
