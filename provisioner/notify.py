"""Notifier: how the platform tells a user something (the bot implements it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Offer:
    """Something the owner can do about a notice, shown as a button under it: an action on one
    of their instances (`restart`, `stop`, `start`) or a page of theirs (`billing`, `plan`)."""

    label: str
    action: str
    instance_id: uuid.UUID | None = None


class Notifier(Protocol):
    async def notify(self, user_id: uuid.UUID, text: str, offers: Sequence[Offer] = ()) -> None: ...

    async def deliver(self, user_id: uuid.UUID, text: str) -> str | None:
        """`notify` for a sender that counts: None once the message is in the user's chat, else
        why it is not (no chat, blocked, Telegram refused)."""

    async def follow(self, user_id: uuid.UUID, instance_id: uuid.UUID, title: str) -> None:
        """Show the owner the instance's current action as it goes (a message edited as its
        progress events arrive), without waiting for it; when nobody can be shown, nothing."""


class NullNotifier:
    """Used when the bot is off: messages go nowhere."""

    async def notify(self, user_id: uuid.UUID, text: str, offers: Sequence[Offer] = ()) -> None:
        return None

    async def deliver(self, user_id: uuid.UUID, text: str) -> str | None:
        return "the bot is off"

    async def follow(self, user_id: uuid.UUID, instance_id: uuid.UUID, title: str) -> None:
        return None
