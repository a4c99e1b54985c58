"""Data retention: what is kept of an instance after it stops for good goes after
CLAWFLEET_DATA_RETENTION_DAYS. Two kinds: the data of an instance deleted without `purge` (kept
for a restore; when is read from its delete's audit row, as nothing else of it is left), and
the whole of an instance suspended by billing that long (the owner did not subscribe again).
One process of all does it (a named lease); each removal is logged and audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import audit
from db.models import AuditLog, Instance
from db.status import Status
from db.types import utcnow
from provisioner.manager import InstanceManager

log = structlog.get_logger(__name__)

LEASE_NAME = "data-retention"
DISCARDED = "instance.data_discarded"


@dataclass(frozen=True)
class RetentionConfig:
    retention_days: int
    interval_s: float = 3600  # how often to look


class Retention:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], manager: InstanceManager,
                 config: RetentionConfig) -> None:
        self.sessions = sessions
        self.manager = manager
        self.config = config
        self.holder = f"{manager.holder}/retention"

    async def run_once(self) -> list[uuid.UUID]:
        """Remove what is past its time; the instances whose data went."""
        cutoff = utcnow() - timedelta(days=self.config.retention_days)
        async with self.sessions() as session:
            suspended = list(await session.scalars(select(Instance).where(
                Instance.status == Status.SUSPENDED, Instance.admin_suspended_at.is_(None),  # an operator's: kept
                Instance.updated_at < cutoff)))
            deletes = list(await session.scalars(select(AuditLog).where(
                AuditLog.action == "instance.delete", AuditLog.created_at < cutoff)))
            done = set(await session.scalars(select(AuditLog.instance_id).where(AuditLog.action == DISCARDED)))
        removed = []
        for row in suspended:
            await self.manager.delete(row.id, keep_data=False)
            await self._record(row.id, row.user_id, Status.SUSPENDED, row.updated_at.isoformat())
            removed.append(row.id)
        for entry in deletes:
            if entry.instance_id is None or entry.instance_id in done or (entry.details or {}).get("purge"):
                continue
            await self.manager.runtime.discard_kept_data(entry.instance_id)
            await self._record(entry.instance_id, entry.user_id, "deleted", entry.created_at.isoformat())
            done.add(entry.instance_id)
            removed.append(entry.instance_id)
        return removed

    async def _record(self, instance_id: uuid.UUID, user_id: uuid.UUID | None, was: str, since: str) -> None:
        log.info("data past its retention removed", instance_id=str(instance_id), was=was, since=since,
                 retention_days=self.config.retention_days)
        async with self.sessions() as session:
            audit.record(session, actor="retention", action=DISCARDED, user_id=user_id, instance_id=instance_id,
                         details={"was": was, "since": since, "retention_days": self.config.retention_days})
            await session.commit()
