"""Accounts: registration, password login (argon2id) and bearer tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import audit
from db.errors import AuthenticationFailed, Conflict, InvalidInput
from db.models import ApiToken, User
from db.types import utcnow

TOKEN_PREFIX = "cf_"  # db.redaction masks anything that starts like this
SESSION_TTL = timedelta(days=30)
MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    record: ApiToken


class Accounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def register(self, email: object, password: object) -> tuple[User, IssuedToken]:
        email = _valid_email(email)
        password = _valid_password(password)
        user = User(email=email, password_hash=_hasher.hash(password))
        async with self.sessions() as session:
            session.add(user)
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict("An account with this email already exists.", field="email") from None
            issued = _issue(session, user, kind="session", name="login")
            audit.record(session, actor="user", action="user.register", user_id=user.id)
            await session.commit()
        return user, issued

    async def login(self, email: object, password: object) -> IssuedToken:
        if not isinstance(email, str) or not isinstance(password, str):
            raise InvalidInput("Send an email and a password.", field="email")
        async with self.sessions() as session:
            user = await session.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None or user.password_hash is None or not _verify(user.password_hash, password):
                raise AuthenticationFailed("Wrong email or password.")
            issued = _issue(session, user, kind="session", name="login")
            await session.commit()
        return issued

    async def telegram_user(self, telegram_user_id: int, chat_id: int, username: str | None) -> User:
        """The account of a Telegram user, made at first contact; chat id and username kept current."""
        for _ in range(2):  # two first updates at once: the loser of the insert reads the winner's row
            async with self.sessions() as session:
                user = await session.scalar(select(User).where(User.telegram_user_id == telegram_user_id))
                if user is None:
                    user = User(telegram_user_id=telegram_user_id, telegram_chat_id=chat_id,
                                telegram_username=username)
                    session.add(user)
                    try:
                        await session.flush()  # the user row first: the audit row points at it
                    except IntegrityError:
                        continue
                    audit.record(session, actor="user", action="user.register", user_id=user.id,
                                 details={"via": "telegram"})
                elif (user.telegram_chat_id, user.telegram_username) == (chat_id, username):
                    return user
                else:
                    user.telegram_chat_id, user.telegram_username = chat_id, username
                try:
                    await session.commit()
                except IntegrityError:
                    continue
                return user
        raise Conflict("Your account could not be created; please try again.")

    async def logout(self, token: str) -> None:
        async with self.sessions() as session:
            record = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
            if record is not None:
                await session.delete(record)
                await session.commit()

    async def user_for_token(self, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        now = utcnow()
        async with self.sessions() as session:
            record = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
            if record is None or (record.expires_at is not None and record.expires_at < now):
                return None
            await session.execute(update(ApiToken).where(ApiToken.id == record.id).values(last_used_at=now))
            user = await session.get(User, record.user_id)
            await session.commit()
            return user


def _issue(session: AsyncSession, user: User, *, kind: str, name: str) -> IssuedToken:
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


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _valid_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email.strip()) or len(email) > 320:
        raise InvalidInput("Enter a valid email address, like name@example.com.", field="email")
    return email.strip().lower()


def _valid_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", field="password")
    if len(password) > 1024:
        raise InvalidInput("That password is too long (1024 characters at most).", field="password")
    return password
