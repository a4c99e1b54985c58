"""The audit log: one helper every layer writes through, so each row has the same shape."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditLog


def record(session: AsyncSession, *, actor: str, action: str, user_id: uuid.UUID | None = None,
           instance_id: uuid.UUID | None = None, details: dict[str, Any] | None = None) -> None:
    """Add who (`actor`: user, platform, admin, …) did what (`action`, like `instance.create`) to
    the session; it is written with the session's next commit, together with what it records."""
    session.add(AuditLog(user_id=user_id, instance_id=instance_id, actor=actor, action=action,
                         details=details or {}))
