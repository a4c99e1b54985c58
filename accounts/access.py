"""The access policy: who may create instances. `open` lets everyone in; `allowlist` the listed
Telegram ids and emails; `invite` whoever redeemed an invite code. Admins always.

An email counts for the allowlist only once its owner proved it is theirs (users.email_verified_at):
anyone may register any address. A Telegram id needs no proof: Telegram vouches for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from accounts.invites import Invites
from db.errors import AccessDenied
from db.models import User

NOT_LISTED = "This ClawFleet is private: ask its operator to add you to the allowlist."
EMAIL_NOT_VERIFIED = (
    "This ClawFleet is private, and your email address is not verified yet, so it cannot count for the "
    "allowlist. Ask its operator to add your Telegram id to the allowlist (ClawFleet's Telegram bot "
    "tells you yours), then set up your assistant from the bot."
)
INVITE_ONLY = "This ClawFleet is invite-only: ask its operator for an invite code."


@dataclass(frozen=True)
class AccessConfig:
    mode: Literal["open", "allowlist", "invite"] = "open"
    allowed_telegram_ids: frozenset[int] = frozenset()
    allowed_emails: frozenset[str] = frozenset()


class AccessPolicy:
    def __init__(self, config: AccessConfig, invites: Invites) -> None:
        self.config = config
        self.invites = invites
        self._emails = frozenset(email.strip().lower() for email in config.allowed_emails)

    @property
    def mode(self) -> str:
        return self.config.mode

    async def check(self, user: User) -> None:
        """Refuse (AccessDenied, saying what to do) a user the policy keeps out."""
        if self.mode == "open" or user.is_admin:
            return
        if self.mode == "allowlist":
            if user.telegram_user_id in self.config.allowed_telegram_ids or self._proven_listed_email(user):
                return
            # Said whenever the email is unproven, listed or not, so the answer tells nobody who is listed.
            raise AccessDenied(EMAIL_NOT_VERIFIED if user.email and user.email_verified_at is None else NOT_LISTED)
        if await self.invites.is_invited(user):
            return
        raise AccessDenied(INVITE_ONLY)

    def check_newcomer(self, telegram_user_id: int) -> None:
        """Refuse someone from Telegram who has no account yet, when the policy would keep them
        out: they get one only once this passes (or, for `invite`, with a valid code)."""
        if self.mode == "open" or (self.mode == "allowlist" and telegram_user_id in self.config.allowed_telegram_ids):
            return
        raise AccessDenied(NOT_LISTED if self.mode == "allowlist" else INVITE_ONLY)

    def _proven_listed_email(self, user: User) -> bool:
        return user.email is not None and user.email_verified_at is not None and user.email in self._emails
