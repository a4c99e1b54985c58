"""Admission: whether a user may create an instance. The provisioner asks; the composition root
answers with the platform's access policy, so the provisioner knows nothing of how people get in.

What the host has room for is decided under ADMISSION_LOCK (db.leases.lock_for_transaction):
every transaction that counts instances, adds up the memory budget or checks a bot token takes
it first, so two requests (in any process) never both see the last free place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Instance, User

ADMISSION_LOCK = "instance-admission"
# A check run under ADMISSION_LOCK on the row an action is about to start; it raises to refuse.
StartCheck = Callable[[AsyncSession, Instance], Awaitable[None]]


class Admission(Protocol):
    async def check(self, user: User) -> None:
        """Return when `user` may create an instance; raise db.errors.AccessDenied, saying what to
        do about it, when not."""


class AdmitAll:
    """Everyone may: the default when nothing else is said."""

    async def check(self, user: User) -> None:
        return None
