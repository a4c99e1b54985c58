"""Users: registration and login with email and password, and the account of a Telegram user,
made once the access policy lets them in (accounts/telegram_entry.py). Logins hand out session
tokens (accounts/tokens.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import login_links, tokens
from accounts.api_tokens import ApiTokens
from accounts.passwords import hashed_password, password_matches, valid_password
from accounts.throttle import AuthThrottle, ThrottleConfig
from accounts.tokens import Credential, IssuedToken
from db import audit
from db.errors import AuthenticationFailed, Conflict, InvalidInput
from db.models import ApiToken, User
from db.read_cache import READ_CACHE_TTL_S, ReadCache

MAX_EMAIL_LENGTH = 320
CREDENTIAL_TABLES = {ApiToken.__tablename__, User.__tablename__}  # what a credential is read from

OnCreate = Callable[[AsyncSession, User], Awaitable[None]]  # a step of the transaction that makes an account


class Accounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 throttle: ThrottleConfig = ThrottleConfig(), *, read_cache_ttl_s: float = READ_CACHE_TTL_S) -> None:
        self.sessions = sessions
        self.throttle = AuthThrottle(throttle)
        self.api_tokens = ApiTokens(sessions)
        self.credentials: ReadCache[str, Credential] = ReadCache(sessions, CREDENTIAL_TABLES, ttl_s=read_cache_ttl_s)
        self.sessions_by_id: ReadCache[uuid.UUID, ApiToken] = ReadCache(sessions, CREDENTIAL_TABLES,
                                                                        ttl_s=read_cache_ttl_s)

    async def register(self, email: object, password: object, *,
                       client: str | None = None) -> tuple[User, IssuedToken]:
        """A new account and its first session. An email that has an account already is
        refused with a 409 that says to log in: the one thing a person registering needs to
        learn. It costs the same hash as a new account, and counts against that email's budget."""
        self.throttle.attempt_from(client)
        email, password = _valid_email(email), valid_password(password)
        self.throttle.attempt_on(email)
        user = User(email=email, password_hash=await hashed_password(password))
        async with self.sessions() as session:
            session.add(user)
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict("An account with this email exists already: log in instead.", field="email") from None
            issued = tokens.issue(session, user, kind="session", name="login")
            audit.record(session, actor="user", action="user.register", user_id=user.id)
            await session.commit()
        self.throttle.forgive(email)
        return user, issued

    async def login(self, email: object, password: object, *, client: str | None = None) -> IssuedToken:
        """A new session for the right password. A wrong one and an unknown email answer alike,
        after the same hashing work."""
        self.throttle.attempt_from(client)
        if not isinstance(email, str) or not isinstance(password, str):
            raise InvalidInput("Send an email and a password.", field="email")
        email = email.strip().lower()
        self.throttle.attempt_on(email)
        async with self.sessions() as session:  # no connection is held while the hash runs
            user = await session.scalar(select(User).where(User.email == email))
        if not await password_matches(user.password_hash if user is not None else None, password):
            raise AuthenticationFailed("Wrong email or password.")
        async with self.sessions() as session:
            await tokens.purge_expired(session, user=user)
            issued = tokens.issue(session, user, kind="session", name="login")
            await session.commit()
        self.throttle.forgive(email)
        return issued

    async def start_session(self, user: User) -> IssuedToken:
        """A new session for someone who proved who they are another way (a one-time link)."""
        async with self.sessions() as session:
            issued = tokens.issue(session, user, kind="session", name="login link")
            await session.commit()
        return issued

    async def telegram_user(self, telegram_user_id: int, chat_id: int, username: str | None, *,
                            on_create: OnCreate | None = None) -> User:
        """The account of a Telegram user, made at first contact; chat id and username kept current.
        `on_create` runs in the transaction that makes the account and may refuse it by raising:
        then nothing is stored (accounts.telegram_entry: an invite code used with it)."""
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
                    if on_create is not None:
                        await on_create(session, user)
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

    async def user_by_id(self, user_id: uuid.UUID) -> User | None:
        async with self.sessions() as session:
            return await session.get(User, user_id)

    async def find_telegram_user(self, telegram_user_id: int) -> User | None:
        """The account of a Telegram user, if they have one; never makes one."""
        async with self.sessions() as session:
            return await session.scalar(select(User).where(User.telegram_user_id == telegram_user_id))

    async def logout(self, token: str) -> None:
        async with self.sessions() as session:
            await tokens.revoke(session, token)
            await session.commit()

    async def end_all_sessions(self, user: User) -> int:
        """Signs the account out everywhere, this browser included: every session goes (its API
        tokens stay, they are revoked one by one); how many went."""
        async with self.sessions() as session:
            gone = (await session.execute(delete(ApiToken).where(
                ApiToken.user_id == user.id, ApiToken.kind == "session"))).rowcount
            audit.record(session, actor="user", action="user.sessions_ended", user_id=user.id)
            await session.commit()
        return gone

    async def purge_expired(self) -> int:
        """Deletes expired tokens and spent login links; how many rows went. Logins purge their
        user's expired tokens by themselves; this catches the rest, run now and then."""
        async with self.sessions() as session:
            gone = await tokens.purge_expired(session) + await login_links.purge_spent(session)
            await session.commit()
        return gone

    # -- the owner's own account --------------------------------------------------------------
    async def change_profile(self, caller: Credential, *, email: object = None, password: object = None,
                             current_password: object = None) -> User:
        """A new email (to be verified again) and/or a new password, given the current password
        when the account has one (a Telegram-only account sets its first without). A new
        password logs out every other session of the account, not the caller's."""
        if email is None and password is None:
            raise InvalidInput("Send a new email, a new password, or both.", field="body")
        user = caller.user
        email = _valid_email(email) if email is not None else None
        password = valid_password(password) if password is not None else None
        await self._confirm_password(user, current_password, field="current_password")
        new_hash = await hashed_password(password) if password is not None else None
        async with self.sessions() as session:
            row = await session.get(User, user.id)
            if row is None:
                raise AuthenticationFailed("This account no longer exists.")
            changed = []
            if email is not None and email != row.email:
                row.email, row.email_verified_at = email, None
                changed.append("email")
            if new_hash is not None:
                row.password_hash = new_hash
                changed.append("password")
                await session.execute(delete(ApiToken).where(
                    ApiToken.user_id == row.id, ApiToken.kind == "session", ApiToken.id != caller.token.id))
            audit.record(session, actor="user", action="user.update", user_id=row.id, details={"changed": changed})
            try:
                await session.commit()
            except IntegrityError:
                raise Conflict("Another account has this email already.", field="email") from None
            return row

    async def confirm_deletion(self, user: User, password: object) -> None:
        """Refuses to let the account go without its password (when it has one)."""
        await self._confirm_password(user, password, field="password")

    async def delete(self, user: User) -> None:
        """The account's row and, through the database's cascades, its tokens and links (its
        instances go first, through the instance service)."""
        async with self.sessions() as session:
            await session.execute(delete(User).where(User.id == user.id))
            audit.record(session, actor="user", action="user.delete", details={"user_id": str(user.id)})
            await session.commit()

    async def _confirm_password(self, user: User, password: object, *, field: str) -> None:
        """The account's password, checked within the account's budget of failures (so a
        stolen session cannot guess it quickly); nothing to check for an account without one."""
        if user.password_hash is None:
            return
        account = user.email or str(user.id)
        self.throttle.attempt_on(account)
        if not isinstance(password, str) or not await password_matches(user.password_hash, password):
            raise AuthenticationFailed("That is not your current password.", field=field)
        self.throttle.forgive(account)

    async def user_for_token(self, token: str) -> User | None:
        credential = await self.credential_for_token(token)
        return credential.user if credential is not None else None

    async def credential_for_token(self, token: str) -> Credential | None:
        """The owner and record of a token still valid, its last use noted; None for anything
        else. Every request asks, so the answer is kept in memory for a moment: any write to
        tokens or users clears it (db/read_cache.py), so a revoked token fails at once."""
        if not token.startswith(tokens.TOKEN_PREFIX):
            return None
        token_hash = tokens.hash_token(token)
        credential = await self.credentials.get(token_hash, lambda: self._stored_credential(token_hash))
        if credential is None or tokens.expired(credential.token):
            return None
        if tokens.use_is_due(credential.token):
            async with self.sessions() as session:
                await tokens.note_use(session, credential.token)
        return credential

    async def session_owner(self, session_id: uuid.UUID) -> uuid.UUID | None:
        """The user of a login session still valid, by the session's id (what an instance
        host's cookie names); None once it is gone or expired, or for anything but a session."""
        record = await self.sessions_by_id.get(session_id, lambda: self._stored_session(session_id))
        if record is None or record.kind != "session" or tokens.expired(record):
            return None
        return record.user_id

    async def _stored_session(self, session_id: uuid.UUID) -> ApiToken | None:
        async with self.sessions() as session:
            return await session.get(ApiToken, session_id)

    async def _stored_credential(self, token_hash: str) -> Credential | None:
        async with self.sessions() as session:
            return await tokens.stored_credential(session, token_hash)


def registration_problems(email: object, password: object) -> dict[str, str]:
    """Everything wrong with a registration, by field, so a form can show it all at once."""
    problems = {}
    for field, check in (("email", _valid_email), ("password", valid_password)):
        try:
            check(email if field == "email" else password)
        except InvalidInput as exc:
            problems[field] = exc.message
    return problems


def _valid_email(email: object) -> str:
    """Something@some.where: one at sign, no blanks, a dot inside the domain. The length is
    checked first, and the rest is plain string work, so no input can make it slow."""
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not _email_shaped(email.strip()):
        raise InvalidInput("Enter a valid email address, like name@example.com.", field="email")
    return email.strip().lower()


def _email_shaped(email: str) -> bool:
    local, at, domain = email.partition("@")
    return (bool(local) and bool(at) and "@" not in domain and "." in domain[1:-1]
            and not any(ch.isspace() for ch in email))
