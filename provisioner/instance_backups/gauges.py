"""The instance-backup gauges whose truth is in the database, set at each scrape
(metrics.Metrics.read_at_scrape): how stale the stalest running instance's latest backup is, and
how many backups are not in the bucket yet. One series each, whatever the number of instances."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, InstanceBackup
from db.status import Status
from db.types import utcnow
from metrics import Metrics
from provisioner.instance_backups.schedule import latest_backups


class BackupGauges:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], metrics: Metrics) -> None:
        self.sessions = sessions
        self.metrics = metrics

    async def read(self) -> None:
        async with self.sessions() as session:
            running = (await session.execute(select(Instance.id, Instance.created_at)
                                             .where(Instance.status == Status.RUNNING))).all()
            latest = await latest_backups(session)
            not_uploaded = await session.scalar(select(func.count()).select_from(InstanceBackup).where(
                InstanceBackup.s3_key.is_(None), InstanceBackup.s3_error.is_not(None)))
        now = utcnow()
        # one never backed up is as stale as it is old: that is how long its state has been at risk
        ages = [(now - latest.get(row.id, row.created_at)).total_seconds() for row in running]
        self.metrics.instance_backup_oldest_age.set(max(ages, default=0))
        self.metrics.instance_backups_not_uploaded.set(not_uploaded or 0)
