"""What one-time links do for an account (accounts/login_links.py makes and takes them,
accounts/delivery.py sends them): prove its email, reset its password, link a Telegram
account to it (or unlink it), sign in from the bot, and hand the operator a link to pass on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.delivery import Channel, Delivery
from accounts.login_links import (
    LINK_TELEGRAM,
    LOGIN,
    RESET_PASSWORD,
    VERIFY_EMAIL,
    IssuedLink,
    LoginLinks,
    Purpose,
    refused,
    take,
)
from accounts.passwords import hashed_password, valid_password
from accounts.telegram_entry import Sender
from accounts.throttle import AuthThrottle, Buckets, ThrottleConfig
from accounts.users import _valid_email
from db import audit
from db.errors import Conflict, NotFound, TooManyAttempts
from db.models import ApiToken, Instance, Invite, User
from db.types import utcnow

log = structlog.get_logger(__name__)

# wrong link codes a Telegram user may send, refilled over the window
CODE_TRIES, CODE_TRIES_WINDOW_S = 5, 15 * 60
NO_OTHER_LOGIN = ("Your account has no email and password, so without Telegram it could never sign in "
                  "again. Set an email and a password first.")


@dataclass(frozen=True)
class OperatorLink:
    url: str
    link: IssuedLink


class AccountLinks:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], links: LoginLinks, delivery: Delivery,
                 throttle: ThrottleConfig = ThrottleConfig()) -> None:
        self.sessions = sessions
        self.links = links
        self.delivery = delivery
        # budgets of their own: asking for resets of someone's email must not lock them out of logging in
        self.throttle = AuthThrottle(throttle)
        self.code_tries = Buckets(CODE_TRIES, CODE_TRIES_WINDOW_S)
        self._sending: set[asyncio.Task[None]] = set()

    async def request_password_reset(self, email: object, *, client: str | None = None) -> None:
        """Sends a reset link to the account of `email`, if there is one. The answer and the
        caller's wait are the same either way (who has an account is not told): the look-up and
        the sending happen after it, in the background."""
        self.throttle.attempt_from(client)
        email = _valid_email(email)
        self.throttle.attempt_on(email)
        task = asyncio.get_running_loop().create_task(self._send_reset(email), name="password-reset")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_reset(self, email: str) -> None:
        try:
            async with self.sessions() as session:
                user = await session.scalar(select(User).where(User.email == email))
            if user is None:
                return
            if self.delivery.channel(user, RESET_PASSWORD) is None:
                log.info("a password reset was asked for an account with no channel: "
                         "`clawfleet admin link reset-password` makes one", user_id=str(user.id))
                return
            await self.delivery.send(user, RESET_PASSWORD, (await self.links.issue(user, RESET_PASSWORD)).token)
        except Exception:  # nobody waits for this: the log says it
            log.exception("could not send a password reset link")

    async def reset_password(self, token: object, password: object) -> None:
        """Sets the password of the reset link's account, uses the link up and ends every session
        of the account (whoever else was signed in is signed out)."""
        password = valid_password(password)
        if not isinstance(token, str) or not await self.links.usable(token, RESET_PASSWORD):
            raise refused(RESET_PASSWORD)  # found out by a read, before any hashing
        password_hash = await hashed_password(password)
        async with self.sessions() as session:
            user = await take(session, token, RESET_PASSWORD)
            user.password_hash = password_hash
            await session.execute(delete(ApiToken).where(ApiToken.user_id == user.id, ApiToken.kind == "session"))
            audit.record(session, actor="user", action="user.password_reset", user_id=user.id)
            await session.commit()

    async def send_email_proof(self, user: User) -> Channel:
        """Sends a link proving the account's email to that address; Conflict (ask the operator)
        when this ClawFleet sends no email."""
        if user.email is None:
            raise Conflict("Your account has no email address to confirm.", field="email")
        if self.delivery.channel(user, VERIFY_EMAIL) is None:
            raise self.delivery.no_channel(VERIFY_EMAIL)
        return await self.delivery.send(user, VERIFY_EMAIL, (await self.links.issue(user, VERIFY_EMAIL)).token)

    async def prove_email(self, token: object) -> None:
        """The link's account has proven its email (when it still has the address it was sent to)."""
        async with self.sessions() as session:
            user = await take(session, token, VERIFY_EMAIL)
            user.email_verified_at = utcnow()
            audit.record(session, actor="user", action="user.email_verified", user_id=user.id)
            await session.commit()

    async def telegram_code(self, user: User) -> IssuedLink:
        """A code that links the Telegram account which sends it to the bot to `user`."""
        return await self.links.issue(user, LINK_TELEGRAM)

    async def link_telegram(self, sender: Sender, code: str) -> User:
        """Links the sender's Telegram account to the web account that made `code`. A Telegram-only
        account the sender has already is merged into it when it has no instances (its invite
        comes along); one with instances, or another web account, is refused. A wrong or
        expired code counts against the sender's budget."""
        key = str(sender.telegram_user_id)
        wait_s = self.code_tries.take(key)
        if wait_s:
            raise TooManyAttempts("Too many wrong codes. Please wait a while and try again.",
                                  retry_after_s=max(1, int(wait_s)))
        async with self.sessions() as session:
            user = await take(session, code, LINK_TELEGRAM)
            self.code_tries.give_back(key)
            holder = await session.scalar(select(User).where(User.telegram_user_id == sender.telegram_user_id))
            if holder is not None and holder.id != user.id:
                await _merge_away(session, holder, into=user)
            user.telegram_user_id, user.telegram_chat_id = sender.telegram_user_id, sender.chat_id
            user.telegram_username = sender.username
            audit.record(session, actor="user", action="user.telegram_linked", user_id=user.id)
            await session.commit()
        return user

    async def unlink_telegram(self, user: User) -> None:
        """The account no longer signs in with Telegram; refused when that is its only way in."""
        if user.email is None or user.password_hash is None:
            raise Conflict(NO_OTHER_LOGIN)
        async with self.sessions() as session:
            await session.execute(update(User).where(User.id == user.id).values(
                telegram_user_id=None, telegram_chat_id=None, telegram_username=None))
            audit.record(session, actor="user", action="user.telegram_unlinked", user_id=user.id)
            await session.commit()

    async def dashboard_link(self, user: User) -> str:
        """A one-time login link for the bot to hand its sender."""
        return self.delivery.url(LOGIN, (await self.links.issue(user, LOGIN)).token)

    async def operator_link(self, email: str, purpose: Purpose) -> OperatorLink:
        """A link for the account of `email`, for the operator to hand over (there is no channel)."""
        email = _valid_email(email)
        async with self.sessions() as session:
            user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            raise NotFound(f"No account has the email {email}.", field="email")
        link = await self.links.issue(user, purpose)
        return OperatorLink(self.delivery.url(purpose, link.token), link)

    async def close(self) -> None:
        """Lets the reset links still being sent go out."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=30)


async def _merge_away(session: AsyncSession, holder: User, *, into: User) -> None:
    """Deletes `holder`, an empty Telegram-only account, so `into` can take its Telegram id."""
    if holder.email is not None:
        raise Conflict("This Telegram account already signs in to another ClawFleet account. "
                       "Unlink it there first (on that account's dashboard).")
    if await session.scalar(select(exists().where(Instance.user_id == holder.id))):
        raise Conflict(f"This Telegram account already has an assistant of its own, so it cannot sign in to "
                       f"{into.email} too. Delete that assistant first (/delete), then send the code again.")
    await session.execute(update(Invite).where(Invite.used_by == holder.id).values(used_by=into.id))
    await session.delete(holder)
    await session.flush()  # its Telegram id is free before `into` takes it

