"""Coming in from Telegram: whoever writes to the bot either has an account, gets one because the
access policy lets them in (for `invite`: made together with the code they redeem), or is turned
away with no account and no audit row made for them; their refusal is recorded instead
(accounts/refusals.py), so the operator sees who asked."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from accounts.invites import Invites, not_usable, take
from accounts.access import AccessPolicy
from accounts.refusals import Refusals
from accounts.users import Accounts, OnCreate
from db.errors import AccessDenied, InvalidInput
from db.models import User


@dataclass(frozen=True)
class Sender:
    telegram_user_id: int
    chat_id: int
    username: str | None


@dataclass(frozen=True)
class Entered:
    user: User
    invited: bool  # an invite code was redeemed just now


@dataclass(frozen=True)
class Refused:
    reason: str  # for the person: what to do about it
    first_in_a_while: bool  # their first refusal this minute: the others need no answer


class TelegramEntry:
    def __init__(self, accounts: Accounts, invites: Invites, access: AccessPolicy, refusals: Refusals) -> None:
        self.accounts = accounts
        self.invites = invites
        self.access = access
        self.refusals = refusals

    async def enter(self, sender: Sender, invite_code: str | None = None) -> Entered | Refused:
        """The sender's account, made or brought up to date; or, for someone without one whom
        the policy keeps out, why not (nothing is made, the refusal is recorded). An account the
        policy keeps out still enters (its owner may see and delete what they have); what it may
        not do, the services refuse. `invite_code` counts under `invite` only; a bad one is
        refused (for an account too, which is then left as it was)."""
        if self.access.mode != "invite":
            invite_code = None
        user = await self.accounts.find_telegram_user(sender.telegram_user_id)
        if user is not None:
            invited = invite_code is not None and not await self._admitted(user)
            if invited:
                try:
                    await self.invites.redeem(user, invite_code)
                except InvalidInput as refused:
                    return Refused(refused.message, True)
            if (user.telegram_chat_id, user.telegram_username) != (sender.chat_id, sender.username):
                user = await self._current(sender)
            return Entered(user, invited)
        try:
            self.access.check_newcomer(sender.telegram_user_id)
        except AccessDenied as refused:
            if invite_code is None:
                return await self._refuse(sender, refused.message)
            return await self._join_with(sender, invite_code)
        return Entered(await self._current(sender), False)

    async def _join_with(self, sender: Sender, invite_code: str) -> Entered | Refused:
        """A new account and the code it redeems, in one transaction: a bad code leaves neither
        (and is found out by a read first, so trying codes costs no writes)."""
        try:
            if not await self.invites.usable(invite_code):
                raise not_usable()
            user = await self._current(sender, on_create=partial(take, code=invite_code))
        except InvalidInput as refused:
            await self._refuse(sender, refused.message)
            return Refused(refused.message, True)  # whoever tries a code hears how it went
        return Entered(user, True)

    async def _refuse(self, sender: Sender, reason: str) -> Refused:
        return Refused(reason, await self.refusals.record(sender.telegram_user_id, sender.username))

    async def _admitted(self, user: User) -> bool:
        try:
            await self.access.check(user)
        except AccessDenied:
            return False
        return True

    async def _current(self, sender: Sender, on_create: OnCreate | None = None) -> User:
        return await self.accounts.telegram_user(sender.telegram_user_id, sender.chat_id, sender.username,
                                                 on_create=on_create)
