"""One-time links, each for one purpose: a dashboard login (`login`, what the bot's /dashboard
hands out), proving an email (`verify_email`, bound to the address it proves), setting a new
password (`reset_password`), linking a Telegram account (`link_telegram`: a short code a
person can type), and opening an instance's own host signed in (`open_instance`: bound to the
instance and to the dashboard session that asked, followed at once by a redirect), and making
the first admin (`admin_setup`: bound to no user, printed in the platform's log while no admin
exists; admin.operators). Each works once, for its own purpose only, until it expires; a new one of a
purpose voids its user's older unused ones of that purpose. Only the hash is stored."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.tokens import TOKEN_PREFIX, hash_token, new_token
from db import audit
from db.errors import AuthenticationFailed, InvalidInput, ServiceError
from db.models import LoginLink, User
from db.types import utcnow

Purpose = Literal["login", "verify_email", "reset_password", "link_telegram", "open_instance", "admin_setup"]
LOGIN: Purpose = "login"
VERIFY_EMAIL: Purpose = "verify_email"
RESET_PASSWORD: Purpose = "reset_password"
LINK_TELEGRAM: Purpose = "link_telegram"
OPEN_INSTANCE: Purpose = "open_instance"
ADMIN_SETUP: Purpose = "admin_setup"

LIFETIMES: dict[str, timedelta] = {
    LOGIN: timedelta(minutes=10),
    VERIFY_EMAIL: timedelta(hours=24),
    RESET_PASSWORD: timedelta(hours=1),
    LINK_TELEGRAM: timedelta(minutes=10),
    OPEN_INSTANCE: timedelta(minutes=1),  # the browser follows it at once
    ADMIN_SETUP: timedelta(hours=24),
}

LINK_PREFIX = TOKEN_PREFIX + "link_"  # masked in logs like every token (db.redaction)
# The setup link is the one secret the platform writes to its log, on purpose: hex after a prefix
# of its own, so no pattern of db.redaction masks it.
SETUP_PREFIX = "setup-"
# A code typed by hand: no 0/o, 1/l/i to mistake for each other, one case. 31^10 is about 2^49,
# against a handful of tries (throttled) in ten minutes.
CODE_PREFIX = "link-"  # db.redaction masks these too
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 10

_REFUSED = {
    LOGIN: "That login link is not valid: it may be used already or expired. Ask the bot for a new one.",
    VERIFY_EMAIL: "That email link is not valid: it may be used already, expired, or for an address your "
                  "account no longer has. Ask for a new one.",
    RESET_PASSWORD: "That password reset link is not valid: it may be used already or expired. Ask for a new one.",
    LINK_TELEGRAM: "That link code is not valid: it may be mistyped, used already or expired. Make a new one "
                   "on the dashboard.",
    OPEN_INSTANCE: "That link to your assistant is not valid: it may be used already or expired. Open your "
                   "assistant again from the dashboard.",
    ADMIN_SETUP: "That setup link is not valid: it may be used already, expired, or voided by a restart. "
                 "The platform's log shows the current one while no admin exists.",
}


@dataclass(frozen=True)
class IssuedLink:
    token: str  # shown once, never stored
    expires_at: datetime


class LoginLinks:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, user: User, ttl: timedelta | None = None, *, purpose: Purpose = LOGIN) -> str:
        """A new link token of `purpose` for `user`, valid for `ttl` (the purpose's lifetime by
        default); shown this once."""
        return (await self.issue(user, purpose, ttl)).token

    async def issue(self, user: User, purpose: Purpose, ttl: timedelta | None = None, *,
                    instance_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None) -> IssuedLink:
        """`create`, with when the link expires. The user's older unused links of `purpose` go
        (for `open_instance`, those of the same instance: two tabs may open two instances)."""
        ttl = LIFETIMES[purpose] if ttl is None else ttl
        if ttl <= timedelta(0):
            raise ValueError("a link must be valid for some time")
        if purpose == VERIFY_EMAIL and user.email is None:
            raise ValueError("an email link needs an account with an email")
        if (purpose == OPEN_INSTANCE) != (instance_id is not None and session_id is not None):
            raise ValueError("an instance link, and it alone, names its instance and session")
        token = new_code() if purpose == LINK_TELEGRAM else new_token(LINK_PREFIX)
        expires_at = utcnow() + ttl
        older = [LoginLink.user_id == user.id, LoginLink.purpose == purpose, LoginLink.used_at.is_(None)]
        if instance_id is not None:
            older.append(LoginLink.instance_id == instance_id)
        async with self.sessions() as session:
            await session.execute(delete(LoginLink).where(*older).execution_options(synchronize_session=False))
            session.add(LoginLink(user_id=user.id, token_hash=hash_token(token), purpose=purpose,
                                  email=user.email if purpose == VERIFY_EMAIL else None, expires_at=expires_at,
                                  instance_id=instance_id, session_id=session_id))
            await session.commit()
        return IssuedLink(token, expires_at)

    async def issue_unbound(self, purpose: Purpose) -> IssuedLink:
        """A link of `purpose` bound to no user (whoever redeems it, signed in); the older unused
        ones of that purpose go."""
        token = SETUP_PREFIX + secrets.token_hex(24)
        expires_at = utcnow() + LIFETIMES[purpose]
        async with self.sessions() as session:
            await void_unbound(session, purpose)
            session.add(LoginLink(user_id=None, token_hash=hash_token(token), purpose=purpose, expires_at=expires_at))
            await session.commit()
        return IssuedLink(token, expires_at)

    async def redeem_instance_link(self, token: str, instance_id: uuid.UUID) -> tuple[User, uuid.UUID]:
        """The user behind a link to open `instance_id`, and the dashboard session it came
        from; the link used up. Refused when unknown, used, expired, or made for another
        instance (a link carried to another instance's host)."""
        async with self.sessions() as session:
            link = await take_link(session, token, OPEN_INSTANCE)
            if link.instance_id != instance_id or link.session_id is None:
                await session.commit()  # used up all the same: a link shown to the wrong host is spent
                raise refused(OPEN_INSTANCE)
            user = await session.get(User, link.user_id)
            audit.record(session, actor="user", action="instance.opened", user_id=user.id,
                         instance_id=instance_id)
            await session.commit()
        return user, link.session_id

    async def redeem(self, token: str) -> User:
        """The login link's user, and the link used up; refused when unknown, used already,
        expired, or a link for anything but logging in."""
        async with self.sessions() as session:
            user = await take(session, token, LOGIN)
            audit.record(session, actor="user", action="user.login_link", user_id=user.id)
            await session.commit()
        return user

    async def usable(self, token: str, purpose: Purpose) -> bool:
        """Whether `token` would be taken for `purpose` now: a read, so a wrong one costs no write
        (and no password hash, for a reset)."""
        async with self.sessions() as session:
            found = await session.scalar(select(LoginLink.id).where(*_usable(token, purpose, utcnow())))
        return found is not None


async def take(session: AsyncSession, token: str, purpose: Purpose) -> User:
    """Uses up the link `token` of `purpose` in the caller's transaction and returns its user, so
    what the link is for is stored only together with its use. Refused (the purpose's error)
    when unknown, used already, expired or of another purpose, and a `verify_email` link when
    its account's email is no longer the one it was made for."""
    link = await take_link(session, token, purpose)
    user = await session.get(User, link.user_id)
    if purpose == VERIFY_EMAIL and (user.email is None or user.email != link.email):
        raise refused(purpose)
    return user


async def take_link(session: AsyncSession, token: str, purpose: Purpose) -> LoginLink:
    """Uses up the link `token` of `purpose` in the caller's transaction; refused (the
    purpose's error) when unknown, used already, expired or of another purpose."""
    if not isinstance(token, str) or not token.strip() or not token.isascii():
        raise refused(purpose)
    now = utcnow()
    link_id = await session.scalar(
        update(LoginLink)
        .where(*_usable(token, purpose, now))
        .values(used_at=now)
        .returning(LoginLink.id)
        .execution_options(synchronize_session=False))
    if link_id is None:
        raise refused(purpose)
    return await session.get(LoginLink, link_id)


async def void_unbound(session: AsyncSession, purpose: Purpose) -> None:
    """Deletes the unused links of `purpose` that no user is bound to, in the caller's transaction."""
    await session.execute(delete(LoginLink).where(LoginLink.user_id.is_(None), LoginLink.purpose == purpose,
                                                  LoginLink.used_at.is_(None))
                          .execution_options(synchronize_session=False))


def refused(purpose: Purpose) -> ServiceError:
    if purpose in (LOGIN, OPEN_INSTANCE):
        return AuthenticationFailed(_REFUSED[purpose])
    return InvalidInput(_REFUSED[purpose], field="code" if purpose == LINK_TELEGRAM else "token")


def new_code() -> str:
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _hash(token: str, purpose: Purpose) -> str:
    # a typed code may come in another case or with blanks around it
    return hash_token(token.strip().lower() if purpose == LINK_TELEGRAM else token)


def _usable(token: str, purpose: Purpose, now: datetime) -> tuple:
    return (LoginLink.token_hash == _hash(token, purpose), LoginLink.purpose == purpose,
            LoginLink.used_at.is_(None), LoginLink.expires_at > now)


async def purge_spent(session: AsyncSession) -> int:
    """Deletes links used already or expired; how many went."""
    spent = or_(LoginLink.used_at.is_not(None), LoginLink.expires_at <= utcnow())
    query = delete(LoginLink).where(spent).execution_options(synchronize_session=False)
    return (await session.execute(query)).rowcount
