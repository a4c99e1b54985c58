"""The access policy: who may create instances. `open` lets everyone in; `allowlist` the listed
Telegram ids and emails; `invite` whoever redeemed an invite code. Admins always."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from accounts.invites import Invites
from db.errors import AccessDenied
from db.models import User


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
            if user.telegram_user_id in self.config.allowed_telegram_ids or (
                user.email is not None and user.email in self._emails
            ):
                return
            raise AccessDenied("This ClawFleet is private: ask its operator to add you to the allowlist.")
        if await self.invites.is_invited(user):
            return
        raise AccessDenied("This ClawFleet is invite-only: ask its operator for an invite code.")
