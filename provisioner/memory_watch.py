"""Gateways that hold too much memory are restarted at a quiet moment.

OpenClaw has open reports of idle gateways growing from 350 MB to many GB over days; a restart
gives the memory back and loses nothing (state is on disk). So, in one platform process at a
time (a singleton lease), every interval: each running gateway's latest memory sample (the
resource sampler's, provisioner/resources/) is compared with its limit, and one that has
stayed at or above `threshold_percent` of it for `sustained_s` is restarted once its model has
been quiet for `quiet_s` (no model call in flight or ended lately, as the model gateway saw
it). The restart itself first asks the gateway
whether any of its work is in flight (provisioner.manager's free_memory, through
`gateway.suspend.prepare`), so it never cuts a reply short; when it is busy, the next round
tries again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.leases import as_singleton, every
from db.models import Instance, LatestResourceSample
from db.status import Status
from db.errors import Conflict
from provisioner.manager import InstanceManager
from provisioner.resources.history import ResourceHistory

log = structlog.get_logger(__name__)

LEASE_NAME = "memory-watch"


@dataclass(frozen=True)
class MemoryWatchConfig:
    threshold_percent: float = 90.0  # of the gateway's memory limit; 0 turns the watch off
    sustained_s: float = 600.0  # above it this long (one high reading is a turn, not a leak)
    quiet_s: float = 300.0  # no model call for this long
    interval_s: float = 60.0
    lease_ttl_s: float = 30.0


class Verdict(StrEnum):
    """What a round decided for one gateway."""

    FINE = "fine"
    HIGH = "high"  # above the threshold, not for long enough yet
    NOT_QUIET = "not quiet"  # would be restarted, but its model was used lately
    BUSY = "busy"  # another action holds the instance
    RESTARTING = "restarting"


@dataclass
class MemoryWatch:
    sessions: async_sessionmaker[AsyncSession]
    manager: InstanceManager
    config: MemoryWatchConfig
    idle_for_s: Callable[[uuid.UUID], float | None]  # the model gateway's ModelActivity.idle_for_s
    clock: Callable[[], float] = time.monotonic
    _high_since: dict[uuid.UUID, float] = field(default_factory=dict)

    @property
    def holder(self) -> str:
        return f"{self.manager.holder}/memory-watch"

    async def run(self) -> None:
        """Rounds every interval while this process holds the lease; never returns."""
        await as_singleton(self.sessions, LEASE_NAME, self.holder, self.config.lease_ttl_s,
                           lambda: every(self.config.interval_s, self.check_once, "memory watch"))

    async def check_once(self) -> dict[uuid.UUID, Verdict]:
        async with self.sessions() as session:
            rows = list(await session.scalars(select(Instance).where(
                Instance.runtime == self.manager.runtime.name, Instance.status == Status.RUNNING)))
        samples = await ResourceHistory(self.sessions).latest(row.id for row in rows)
        now, verdicts = self.clock(), {}
        for row in rows:
            used = _current_mb(samples.get(row.id), row)
            verdicts[row.id] = verdict = await self._judge(row, used, now)
            if verdict is not Verdict.FINE:
                log.info("gateway memory", instance_id=str(row.id), used_mb=used, limit_mb=row.memory_mb,
                         verdict=str(verdict))
        for gone in set(self._high_since) - {row.id for row in rows}:
            del self._high_since[gone]
        return verdicts

    async def _judge(self, row: Instance, used_mb: int | None, now: float) -> Verdict:
        if not used_mb or not row.memory_mb or used_mb * 100 < row.memory_mb * self.config.threshold_percent:
            self._high_since.pop(row.id, None)
            return Verdict.FINE
        since = self._high_since.setdefault(row.id, now)
        if now - since < self.config.sustained_s:
            return Verdict.HIGH
        idle = self.idle_for_s(row.id)
        if idle is not None and idle < self.config.quiet_s:
            return Verdict.NOT_QUIET
        try:
            await self.manager.free_memory(row.id)
        except Conflict:  # another action holds the instance (a background one never pre-empts it)
            return Verdict.BUSY
        del self._high_since[row.id]  # after the restart it must stay high again for as long
        return Verdict.RESTARTING


def _current_mb(sample: LatestResourceSample | None, row: Instance) -> int | None:
    """The gateway's memory by the resource sampler's latest reading of it, not of the one before
    a restart (sampled before `running_since`)."""
    if sample is None or (row.running_since is not None and sample.taken_at < row.running_since):
        return None
    return sample.memory_bytes // (1024 * 1024)
