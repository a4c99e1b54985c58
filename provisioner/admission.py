"""Admission: whether a user may create an instance. The provisioner asks; the composition root
answers with the platform's access policy, so the provisioner knows nothing of how people get in."""

from __future__ import annotations

from typing import Protocol

from db.models import User


class Admission(Protocol):
    async def check(self, user: User) -> None:
        """Return when `user` may create an instance; raise db.errors.AccessDenied, saying what to
        do about it, when not."""


class AdmitAll:
    """Everyone may: the default when nothing else is said."""

    async def check(self, user: User) -> None:
        return None
