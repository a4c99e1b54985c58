"""The reconciler loop: at boot and every interval, observe every gateway in one `list_all`
call, compare with the database, and act on the difference through the manager.

It runs under a singleton lease, so of several platform processes only one reconciles; each
action it starts takes the instance's own lease as well, so it never races a user's action.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import Conflict
from db.leases import as_singleton, every
from db.status import Status
from db.models import Instance
from db.types import utcnow
from provisioner.manager import InstanceManager, probe
from provisioner.openclaw.config import PROBE_HEADERS
from provisioner.reconcile.decisions import Act, Desired, Seen, Verdict, decide, health_verdict, streak_survives
from provisioner.runtimes.base import GatewayState, Listed

log = structlog.get_logger(__name__)

LEASE_NAME = "reconciler"
# Acts that leave everything as it is: the instance matches its status (or waits its turn);
# the others are drift, logged and counted.
QUIET = (Act.NOTHING, Act.PROBE, Act.WAIT, Act.BUSY)


@dataclass(frozen=True)
class ReconcilerConfig:
    interval_s: float = 30
    lease_ttl_s: float = 30
    not_ready_grace_s: float = 60
    probe_timeout_s: float = 5


class Reconciler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], manager: InstanceManager,
                 config: ReconcilerConfig, http: aiohttp.ClientSession) -> None:
        self.sessions = sessions
        self.metrics = manager.metrics
        self.manager = manager
        self.runtime = manager.runtime
        self.config = config
        self.http = http
        self.holder = f"{manager.holder}/reconciler"

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        """Reconcile now, then every interval, while this process holds the singleton lease; try
        for it again a third of its TTL later when another process has it, so a killed holder is
        replaced fast."""
        await as_singleton(self.sessions, LEASE_NAME, self.holder, self.config.lease_ttl_s, self._reconcile_forever)

    async def _reconcile_forever(self) -> None:
        await every(self.config.interval_s, self.reconcile_once, "reconcile")

    # -- one pass -------------------------------------------------------------------------
    async def reconcile_once(self) -> dict[uuid.UUID, Act]:
        """One pass over every instance and every gateway found; what was decided for each."""
        # Observe first, then read the rows: a gateway is only ever started after its row exists,
        # so every gateway seen here has its row in the read below unless it was deleted.
        found = {listed.instance_id: listed for listed in await self.runtime.list_all()}
        async with self.sessions() as session:
            rows = list(await session.scalars(select(Instance).where(Instance.runtime == self.runtime.name)))
            others = set(await session.scalars(select(Instance.id).where(Instance.runtime != self.runtime.name)))
        now = utcnow()
        decided: dict[uuid.UUID, Act] = {}
        probes = []
        for row in rows:
            listed = found.pop(row.id, None)
            desired = Desired(row.status, _lease_busy(row, now), row.next_attempt_at)
            up = listed is not None and listed.observed.state is GatewayState.UP
            seen = Seen(up=up, recorded=up and self.runtime.matches(listed.info, row.runtime_state))
            act = decided[row.id] = decide(desired, seen, now)
            if act is Act.PROBE:
                probes.append(self._probe(row, now))
            else:
                await self._act(act, row, listed)
        for listed in found.values():
            if listed.instance_id in others:
                continue  # a row of another runtime's: not this runtime's to judge
            decided[listed.instance_id] = Act.STOP_ORPHAN
            await self._stop_orphan(listed)
        await asyncio.gather(*probes)
        acted = {str(i): str(a) for i, a in decided.items() if a not in QUIET}
        if acted:
            log.info("reconciled", acted=acted)
        self._count(decided)
        return decided

    def _count(self, decided: dict[uuid.UUID, Act]) -> None:
        """One more pass; each instance found not as its status says (clawfleet_reconcile_*)."""
        self.metrics.reconcile_passes.inc()
        for act in decided.values():
            if act not in QUIET:
                self.metrics.reconcile_drift.labels(act.value).inc()

    async def _act(self, act: Act, row: Instance, listed: Listed | None) -> None:
        try:
            if act is Act.ADOPT:
                await self.manager.recover(row.id, listed.info if listed else None)
            elif act is Act.START:
                await self.manager.recover(row.id, None)
            elif act is Act.CRASHED:
                await self.manager.crashed(row.id, "gone")
            elif act is Act.STOP:
                await self.manager.halt(row.id)
            elif act is Act.FINISH_DELETE:
                await self.manager.delete(row.id, keep_data=True)  # the purge choice is not known: keep
        except Conflict:
            pass  # an action took the lease since the rows were read: it decides now

    async def _stop_orphan(self, listed: Listed) -> None:
        log.warning("stopping a gateway with no instance row", instance_id=str(listed.instance_id))
        await self.runtime.remove(listed.instance_id, listed.info, keep_data=True)

    # -- health ---------------------------------------------------------------------------
    async def _probe(self, row: Instance, now: datetime) -> None:
        live = await probe(self.http, f"{row.endpoint_url}/healthz", self.config.probe_timeout_s)
        ready, detail = await self._readiness(row.endpoint_url) if live else (False, "it does not answer")
        verdict = health_verdict(live, ready, row.not_ready_since, told=row.status_reason is not None, now=now,
                                 grace=timedelta(seconds=self.config.not_ready_grace_s))
        if verdict is Verdict.HEALTHY:
            changes: dict[str, object] = {}
            if row.not_ready_since is not None or row.status_reason is not None:
                changes |= {"not_ready_since": None, "status_reason": None}
            if row.failure_streak and not streak_survives(row.failure_streak, row.running_since, now):
                changes |= {"failure_streak": 0}
            if changes:
                await self._update_if_idle(row.id, now, changes)
        elif verdict is Verdict.NOT_READY:
            await self._update_if_idle(row.id, now, {"not_ready_since": now})
        elif verdict is Verdict.TELL_OWNER:
            reason = (f"Running, but not ready to answer: {detail}. If another program uses the same "
                      "Telegram bot token, stop it; if the token was revoked, set a new one.")
            if await self._update_if_idle(row.id, now, {"status_reason": reason}):
                await self.manager.tell_owner(row.user_id, f"Your assistant needs attention. {reason}")
        elif verdict is Verdict.HUNG:
            await self.manager.crashed(row.id, "hung")

    async def _readiness(self, endpoint_url: str) -> tuple[bool, str]:
        """/readyz's answer, and what it says is failing (OpenClaw: {"failing": ["telegram"]})."""
        try:
            timeout = aiohttp.ClientTimeout(total=self.config.probe_timeout_s)
            async with self.http.get(f"{endpoint_url}/readyz", headers=PROBE_HEADERS, timeout=timeout) as response:
                if response.status == 200:
                    return True, ""
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False, "its readiness check does not answer"
        failing = body.get("failing") if isinstance(body, dict) else None
        if isinstance(failing, list) and failing:
            return False, "failing: " + ", ".join(str(name) for name in failing)
        return False, "its readiness check fails"

    async def _update_if_idle(self, instance_id: uuid.UUID, now: datetime, values: dict[str, object]) -> bool:
        """Write health findings only to a row still running with no action on it."""
        async with self.sessions() as session:
            result = await session.execute(
                update(Instance)
                .where(Instance.id == instance_id, Instance.status == Status.RUNNING,
                       or_(Instance.lease_holder.is_(None), Instance.lease_expires_at < now))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return result.rowcount == 1


def _lease_busy(row: Instance, now: datetime) -> bool:
    return row.lease_holder is not None and row.lease_expires_at is not None and row.lease_expires_at > now
