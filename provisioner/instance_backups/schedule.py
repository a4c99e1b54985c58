"""Scheduled instance backups. In one platform process at a time (a named lease, rounds every
`interval_s`), each running instance whose latest backup, of any kind, is older than its owner's
`backup_every_hours` (plan or operator default; 0: none) is backed up with the manager's
SCHEDULED_BACKUP action, `concurrency` at a time. That action is background work: an instance
busy with its owner's action is skipped, and being still due, is tried at the next round. Each
round first retries the uploads to the bucket that failed (the keeper's upload_pending)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import Conflict, NotFound
from db.models import Instance, InstanceBackup, User
from db.status import Status
from db.types import utcnow
from provisioner.entitlements import Entitlements
from provisioner.instance_backups.keeper import BackupKeeper
from provisioner.manager import InstanceManager

log = structlog.get_logger(__name__)

LEASE_NAME = "instance-backup-schedule"


@dataclass(frozen=True)
class ScheduleConfig:
    interval_s: float = 900  # how often to look for instances due
    concurrency: int = 2  # backups at once: each is an `openclaw backup create` taking a core for seconds


class Verdict(StrEnum):
    """What a round did for one running instance."""

    OFF = "off"  # its owner's allowance has no scheduled backups
    NOT_DUE = "not due"
    TAKEN = "taken"
    FAILED = "failed"  # tried again at the next round: it is still due
    BUSY = "busy"  # another action holds it; the next round tries again
    GONE = "gone"  # deleted since the round looked


async def latest_backups(session: AsyncSession) -> dict[uuid.UUID, datetime]:
    """Each instance's newest backup time (instances never backed up are left out)."""
    rows = await session.execute(select(InstanceBackup.instance_id, func.max(InstanceBackup.created_at))
                                 .group_by(InstanceBackup.instance_id))
    return dict(rows.all())


class BackupSchedule:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], manager: InstanceManager, keeper: BackupKeeper,
                 entitlements: Entitlements, config: ScheduleConfig) -> None:
        self.sessions = sessions
        self.manager = manager
        self.keeper = keeper
        self.entitlements = entitlements
        self.config = config
        self.holder = f"{manager.holder}/backup-schedule"

    async def run_once(self) -> dict[uuid.UUID, Verdict]:
        await self.keeper.upload_pending()
        verdicts = await self._due()
        slots = asyncio.Semaphore(self.config.concurrency)

        async def back_up(instance_id: uuid.UUID) -> None:
            async with slots:
                verdicts[instance_id] = await self._back_up(instance_id)

        await asyncio.gather(*(back_up(instance_id) for instance_id, verdict in verdicts.items()
                               if verdict is None))
        taken = sum(verdict is Verdict.TAKEN for verdict in verdicts.values())
        if taken or any(verdict in (Verdict.FAILED, Verdict.BUSY) for verdict in verdicts.values()):
            log.info("scheduled backups", taken=taken,
                     failed=sum(verdict is Verdict.FAILED for verdict in verdicts.values()),
                     busy=sum(verdict is Verdict.BUSY for verdict in verdicts.values()))
        return verdicts

    async def _due(self) -> dict[uuid.UUID, Verdict | None]:
        """Every running instance of this runtime: None when due, else why it is left alone."""
        now, every_hours = utcnow(), {}
        async with self.sessions() as session:
            rows = (await session.execute(select(Instance.id, User).join(User, User.id == Instance.user_id).where(
                Instance.runtime == self.manager.runtime.name, Instance.status == Status.RUNNING))).all()
            latest = await latest_backups(session)
        verdicts: dict[uuid.UUID, Verdict | None] = {}
        for instance_id, owner in rows:
            if owner.id not in every_hours:
                every_hours[owner.id] = (await self.entitlements.allowance(owner)).backup_every_hours
            hours = every_hours[owner.id]
            last = latest.get(instance_id)
            if not hours:
                verdicts[instance_id] = Verdict.OFF
            elif last is not None and now - last < timedelta(hours=hours):
                verdicts[instance_id] = Verdict.NOT_DUE
            else:
                verdicts[instance_id] = None
        return verdicts

    async def _back_up(self, instance_id: uuid.UUID) -> Verdict:
        try:
            progress = await self.manager.backup(instance_id, "scheduled")
        except Conflict:
            return Verdict.BUSY
        except NotFound:
            return Verdict.GONE
        last = None
        async for event in progress.follow():  # its end, so no more than `concurrency` run at once
            last = event
        return Verdict.TAKEN if last is not None and last.done else Verdict.FAILED
