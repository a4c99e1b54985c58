"""The gauges whose truth is in the database, set at each scrape (metrics.Metrics.read_at_scrape):
instances by status (every status, 0 included, so a series never vanishes) and the gateways'
memory from their latest samples. No per-instance series: their number would grow with the
users; the sum and the fullest gateway's share of its limit stay one series each."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, LatestResourceSample
from db.status import Status
from metrics import Metrics

MB = 1024 * 1024


class FleetGauges:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], metrics: Metrics) -> None:
        self.sessions = sessions
        self.metrics = metrics

    async def read(self) -> None:
        async with self.sessions() as session:
            counts = dict((await session.execute(select(Instance.status, func.count()).group_by(Instance.status))).all())
            memory = (await session.execute(select(LatestResourceSample.memory_bytes, Instance.memory_mb)
                                            .join(Instance, Instance.id == LatestResourceSample.instance_id))).all()
        for status in Status:
            self.metrics.instances.labels(status.value).set(counts.get(status.value, 0))
        self.metrics.gateways_sampled.set(len(memory))
        self.metrics.gateways_memory.set(sum(row.memory_bytes for row in memory))
        shares = [row.memory_bytes / (row.memory_mb * MB) for row in memory if row.memory_mb]
        self.metrics.gateway_memory_share_max.set(max(shares, default=0))
