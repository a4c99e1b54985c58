"""Notifier: how the platform tells a user something (the bot implements it)."""

from __future__ import annotations

import uuid
from typing import Protocol


class Notifier(Protocol):
    async def notify(self, user_id: uuid.UUID, text: str) -> None: ...


class NullNotifier:
    """Used when the bot is off: messages go nowhere."""

    async def notify(self, user_id: uuid.UUID, text: str) -> None:
        return None
