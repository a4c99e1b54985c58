"""The resource sampler: every CLAWFLEET_RESOURCE_SAMPLE_INTERVAL_S, one platform process (a
named lease, db.leases.every_as_singleton) asks the runtime what each running gateway uses,
turns the CPU time since the previous sample into a load, writes the history and the latest
sample per instance, and lets history older than a day go."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, LatestResourceSample, ResourceSample
from db.status import Status
from db.types import utcnow
from provisioner.runtimes.base import ResourceUse, Runtime

log = structlog.get_logger(__name__)

LEASE_NAME = "resource-sampler"
KEPT = timedelta(hours=24)
SAMPLE_TIMEOUT_S = 10  # one engine call that hangs must not hold up the round's other gateways


@dataclass(frozen=True)
class Taken:
    instance_id: uuid.UUID
    use: ResourceUse


def cpu_percent(previous: LatestResourceSample | None, use: ResourceUse, now: datetime) -> float | None:
    """The CPU load between two samples, in percent of one core; None without an earlier sample
    of the same gateway (a restart starts its CPU time again from nothing)."""
    if previous is None:
        return None
    seconds = (now - previous.taken_at).total_seconds()
    used = use.cpu_seconds - previous.cpu_seconds
    if seconds <= 0 or used < 0:
        return None
    return round(used / seconds * 100, 2)


class ResourceSampler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], runtime: Runtime, holder: str) -> None:
        self.sessions = sessions
        self.runtime = runtime
        self.holder = f"{holder}/resources"

    async def run_once(self) -> int:
        """One round; how many gateways were sampled."""
        async with self.sessions() as session:
            running = (await session.execute(select(Instance.id, Instance.runtime_state).where(
                Instance.status == Status.RUNNING, Instance.runtime == self.runtime.name))).all()
        found = await asyncio.gather(*(self._sample(row.id, row.runtime_state) for row in running))
        await self._store([taken for taken in found if taken is not None], utcnow())
        return sum(taken is not None for taken in found)

    async def _sample(self, instance_id: uuid.UUID, state: dict) -> Taken | None:
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_S):
                use = await self.runtime.sample(instance_id, state)
        except Exception:  # the engine away a moment: this gateway waits for the next round
            log.warning("could not sample a gateway's resources", instance_id=str(instance_id), exc_info=True)
            return None
        return Taken(instance_id, use) if use is not None else None

    async def _store(self, taken: list[Taken], now: datetime) -> None:
        """The latest table is replaced whole: a gateway that no longer runs has no latest sample."""
        async with self.sessions() as session:
            previous = {row.instance_id: row for row in await session.scalars(select(LatestResourceSample))}
            ids = [each.instance_id for each in taken]
            # an instance deleted since it was sampled has no row left to point at
            alive = set(await session.scalars(select(Instance.id).where(Instance.id.in_(ids)))) if ids else set()
            await session.execute(delete(LatestResourceSample))
            for each in taken:
                if each.instance_id not in alive:
                    continue
                load = cpu_percent(previous.get(each.instance_id), each.use, now)
                session.add(ResourceSample(instance_id=each.instance_id, taken_at=now,
                                           memory_bytes=each.use.memory_bytes, cpu_percent=load))
                session.add(LatestResourceSample(instance_id=each.instance_id, taken_at=now,
                                                 memory_bytes=each.use.memory_bytes,
                                                 cpu_seconds=each.use.cpu_seconds, cpu_percent=load))
            await session.execute(delete(ResourceSample).where(ResourceSample.taken_at < now - KEPT))
            await session.commit()
