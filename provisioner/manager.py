"""The lifecycle manager: runs actions on instances in the background, one at a time each.

It owns the orchestration the runtimes leave out (JupyterHub's split): the start timeout, the
readiness wait on the gateway's /readyz, a warm-up turn begun as soon as it is live and
awaited once it is ready (provisioner.warm_up), cleanup when a start fails, the persisted runtime
state and status (with a reason the owner can read), progress events, the per-instance row
lease (through db.leases.hold), who may pre-empt whom (db.status.preempts), and a cap on how
many gateways start at once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import audit
from db.errors import Conflict, NotFound
from db.leases import (
    InstanceLease,
    LeaseLost,
    acquire_instance_lease,
    hold,
    lock_for_transaction,
    release_with_retries,
    request_instance_cancel,
    with_retries,
)
from db.models import Instance, InstanceBackup, User
from db.redaction import redact
from db.sealing import KeyRing, open_from
from db.status import DOING, Action, Status, check_move, preempts
from db.types import utcnow
from metrics import Metrics
from provisioner.admission import ADMISSION_LOCK, StartCheck
from provisioner.entitlements import Entitlements, OperatorDefaults
from provisioner.gateway_calls import gateway_busy
from provisioner.instance_backups.cipher import BackupCorrupt
from provisioner.instance_backups.keeper import BackupKeeper, BackupMissing
from provisioner.instance_backups.words import size_text
from provisioner.instance_urls import InstanceUrls
from provisioner.model_access import issue_credential, route_url
from provisioner.notify import Notifier, NullNotifier
from provisioner.openclaw.config import PROBE_HEADERS
from provisioner.ports import PortAllocator
from provisioner.progress import ProgressHub, ProgressLog
from provisioner.reconcile.decisions import MAX_FAILURES, Backoff, after_failure
from provisioner.runtimes.base import GatewayState, LaunchRequest, Runtime
from provisioner.runtimes.state_archives import DOCTOR_ARGV, StateArchiveFailed, check
from provisioner.warm_up import WARM_UP_TIMEOUT_S, Nonces, WarmUpResult, warm_up

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ManagerConfig:
    start_timeout_s: float = 120
    stop_grace_s: float = 10
    max_concurrent_starts: int = 2
    telegram_api_root: str | None = None  # set when not Telegram's own (a proxy, or a test fake)
    # the port of the platform's model gateway (model_gateway/), which every gateway calls its
    # models through; None: no model gateway runs, and starts are refused
    model_gateway_port: int | None = None
    lease_ttl_s: float = 30  # renewed while an action runs; a dead holder's lease lapses this fast
    backoff: Backoff = Backoff(10, 300)
    # Crash tests only: the platform kills itself (SIGKILL) at this point of a deploy.
    crash_at: str | None = None
    # Each instance's own address: its gateway's Control UI accepts that origin alone, and signs
    # its owner in through the platform's proxy (provisioner/openclaw/config.py). None: no Control UI sign-in.
    instance_urls: InstanceUrls | None = None
    # One agent turn inside each freshly started gateway before it is reported running, so the
    # owner's first answer is as quick as the next (provisioner/warm_up.py); needs the nonces.
    warm_up: bool = False
    warm_up_timeout_s: float = WARM_UP_TIMEOUT_S


@dataclass
class _WarmUp:
    """One start's warm-up turn: begun as soon as the gateway is live, awaited once it is ready."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[WarmUpResult] | None = None

    def begin(self, turn: Callable[[], Awaitable[WarmUpResult]]) -> None:
        if self.task is None:
            self.task = asyncio.ensure_future(turn())

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class StartFailed(Exception):
    """A start that did not reach ready; the message is for the instance's owner."""


@dataclass(frozen=True)
class Outcome:
    """How an action ended. Emitted as the stream's last event in the transaction that frees the
    lease, so a client that sees it can act on the instance again at once."""

    step: str
    message: str
    failed: bool = False


Work = Callable[[Instance, ProgressLog], Awaitable[Outcome]]
# Written as an action is taken, so the caller's answer shows the state it set.
_STARTING = {"status": Status.PROVISIONING, "status_reason": None}
# Why an action was cut short, by the request that pre-empted it.
_REQUESTED = {
    Action.DEPLOY: "the assistant was asked to start",
    Action.RESTART: "the assistant was asked to restart",
    Action.STOP: "the assistant was asked to stop",
    Action.DELETE: "the assistant is being deleted",
    Action.BACKUP: "the assistant was asked to back up",
    Action.RESTORE: "a backup is being restored into the assistant",
}


@dataclass
class _Running:
    """An action this process runs: what it is, under which lease holder, and its task."""

    action: Action
    holder: str
    task: asyncio.Task[None]
    progress: ProgressLog | None = None
    preempted_by: Action | None = None


class InstanceManager:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], runtime: Runtime, keyring: KeyRing,
                 config: ManagerConfig, http: aiohttp.ClientSession, *, holder: str | None = None,
                 progress: ProgressHub | None = None, ports: PortAllocator | None = None,
                 notifier: Notifier | None = None, entitlements: Entitlements | None = None,
                 warm_up_nonces: Nonces | None = None, metrics: Metrics | None = None,
                 backups: BackupKeeper | None = None) -> None:
        self.sessions = sessions
        self.backups = backups  # None: instance backups are off (tests of other things)
        self.runtime = runtime
        self.keyring = keyring
        self.config = config
        self.http = http
        self.holder = holder or f"manager-{uuid.uuid4().hex[:12]}"
        self.progress = progress or ProgressHub(sessions, gone_grace_s=config.lease_ttl_s)
        self.ports = ports or PortAllocator()
        self.notifier = notifier or NullNotifier()
        self.entitlements = entitlements or OperatorDefaults(1)
        self.warm_up_nonces = warm_up_nonces  # the model gateway's: it answers warm-up turns itself
        self.metrics = metrics or Metrics()  # the platform's; a registry of its own otherwise (unscraped)
        self._start_slots = asyncio.Semaphore(config.max_concurrent_starts)
        self._running: dict[uuid.UUID, _Running] = {}

    # -- entry points: take the lease now (so callers learn "busy" at once), work in background
    async def deploy(self, instance_id: uuid.UUID, *, holder: str | None = None,
                     check: StartCheck | None = None) -> ProgressLog:
        """Start on the owner's request: failures so far are forgotten; a failure ends in `error`.
        `holder`: a lease the caller took with `claim`, so nobody acts between its insert and this.
        `check`: run under the admission lock in the transaction that sets the start's state (the
        memory budget); what it raises refuses the start, and the lease is freed."""
        return await self._launch(instance_id, Action.DEPLOY, self._deploy, holder, entry=_STARTING, check=check)

    def claim(self, instance: Instance, action: Action = Action.DEPLOY) -> str:
        """Put a fresh lease on a row about to be inserted (the reconciler must not mistake a
        new `provisioning` row for an interrupted one); pass the holder to `deploy` (or `restore`)."""
        holder = self._new_holder()
        instance.lease_holder, instance.lease_expires_at = holder, utcnow() + self._lease_ttl
        instance.action = action.value
        return holder

    async def recover(self, instance_id: uuid.UUID, found: dict | None = None) -> ProgressLog:
        """Bring an instance that should run back to running (the reconciler): adopt the gateway
        `found` running for it, else start one; a failure counts towards crash backoff."""
        return await self._launch(instance_id, Action.RECOVER, lambda i, p: self._recover(i, p, found))

    async def stop(self, instance_id: uuid.UUID) -> ProgressLog:
        return await self._launch(instance_id, Action.STOP, self._stop)

    async def suspend(self, instance_id: uuid.UUID, reason: str) -> ProgressLog:
        """Stop it because billing says so: `suspended`, with `reason` for its owner; data kept."""
        return await self._launch(instance_id, Action.STOP, lambda i, p: self._stop(i, p, Status.SUSPENDED, reason))

    async def halt(self, instance_id: uuid.UUID) -> ProgressLog:
        """Stop a gateway that runs although its status says it should not; the status stays."""
        return await self._launch(instance_id, Action.HALT, self._halt)

    async def restart(self, instance_id: uuid.UUID, *, check: StartCheck | None = None) -> ProgressLog:
        return await self._launch(instance_id, Action.RESTART, self._restart, entry=_STARTING, check=check)

    async def free_memory(self, instance_id: uuid.UUID) -> ProgressLog:
        """Restart a gateway grown too big (provisioner.memory_watch), only when the gateway says
        none of its work is in flight; otherwise nothing is done and the watch tries later."""
        return await self._launch(instance_id, Action.FREE_MEMORY, self._free_memory)

    async def delete(self, instance_id: uuid.UUID, keep_data: bool) -> ProgressLog:
        return await self._launch(instance_id, Action.DELETE, lambda i, p: self._delete(i, p, keep_data),
                                  entry={"status": Status.DELETING, "status_reason": None})

    async def backup(self, instance_id: uuid.UUID, kind: str = "manual") -> ProgressLog:
        """An instance backup (provisioner/instance_backups/), its gateway left as it is. A
        scheduled one is background work: it never pushes another action aside, and yields to the owner's."""
        action = Action.SCHEDULED_BACKUP if kind == "scheduled" else Action.BACKUP
        return await self._launch(instance_id, action, lambda i, p: self._backup(i, p, kind))

    async def restore(self, instance_id: uuid.UUID, backup_id: uuid.UUID, *, holder: str | None = None,
                      check: StartCheck | None = None) -> ProgressLog:
        """Put a backup's state (of this instance, or another of the same owner's) in place and
        start on it: a pre-restore backup first, the replaced state kept until the start succeeds."""
        return await self._launch(instance_id, Action.RESTORE, lambda i, p: self._restore(i, p, backup_id),
                                  holder, entry=_STARTING, check=check)

    async def crashed(self, instance_id: uuid.UUID, detail: str) -> None:
        """A gateway that should run is gone (or hung): count the failure, then either schedule
        a restart after the backoff or give up. Checked again under the lease, so a gateway
        started meanwhile by someone else is not taken for a crash. Returns once handled; an
        owner's action in the meantime wins."""
        try:
            await self._launch(instance_id, Action.CRASHED, lambda i, p: self._crashed(i, detail))
        except Conflict:
            return
        running = self._running.get(instance_id)
        if running is not None and running.action is Action.CRASHED:
            await asyncio.gather(running.task, return_exceptions=True)

    def action_in_progress(self, instance_id: uuid.UUID) -> Action | None:
        running = self._running.get(instance_id)
        return running.action if running else None

    async def wait_idle(self) -> None:
        """Let every action in flight finish (tests, and graceful shutdown)."""
        while self._running:
            await asyncio.gather(*[r.task for r in self._running.values()], return_exceptions=True)

    async def close(self) -> None:
        for running in list(self._running.values()):
            running.task.cancel()
        await asyncio.gather(*[r.task for r in self._running.values()], return_exceptions=True)

    @property
    def _lease_ttl(self) -> timedelta:
        return timedelta(seconds=self.config.lease_ttl_s)

    def _new_holder(self) -> str:
        return f"{self.holder}/{uuid.uuid4().hex[:8]}"  # per action: this process's own actions exclude each other too

    async def _launch(self, instance_id: uuid.UUID, action: Action, work: Work, holder: str | None = None,
                      *, entry: dict[str, object] | None = None, check: StartCheck | None = None) -> ProgressLog:
        """Take the instance's lease for `action` (pre-empting what `preempts` allows), write the
        state it sets (`entry`, once `check` let it) before the caller answers, then run it in
        the background."""
        holder = holder or self._new_holder()
        # An action of this process's own still running there holds the instance even when its
        # lease lapsed (a stalled machine renews late): the lease alone would let a second in.
        local = self._running.get(instance_id)
        if (local is not None and not local.task.done()) or not await self._take(instance_id, holder, action):
            found = await self._lease_of(instance_id)
            if found is None:  # the row went meanwhile: a delete finished
                if action is Action.DELETE:
                    return await self._current_progress(instance_id)
                raise NotFound("No such instance.")
            current_holder, current = found
            if current == action and action in (Action.STOP, Action.DELETE):
                return await self._current_progress(instance_id)  # asked twice: the same action answers
            if not preempts(action, current) or not await self._preempt(instance_id, action, holder, current_holder):
                raise Conflict(f"This instance is busy: {DOING.get(current, 'another action runs on it')}. "
                               "Wait for it to finish, then try again.")
        async with self.sessions() as session:
            if check is not None:
                await lock_for_transaction(session, ADMISSION_LOCK)
            row = await session.get(Instance, instance_id)
            owner_id = row.user_id if row is not None else None
            if row is not None and check is not None:
                try:
                    await check(session, row)
                except BaseException:
                    await session.rollback()
                    await release_with_retries(self.sessions, InstanceLease(instance_id, holder, action.value))
                    raise
            if row is not None and entry:
                for name, value in entry.items():
                    if name == "status":
                        value = check_move(row.status, value)
                    setattr(row, name, value)
                await session.commit()
        progress = await self.progress.begin(instance_id, owner_id)
        log.info("action started", action=str(action), instance_id=str(instance_id))
        task = asyncio.create_task(self._run(instance_id, action, work, progress, holder),
                                   name=f"{action}:{instance_id}")
        running = self._running[instance_id] = _Running(action, holder, task, progress)
        task.add_done_callback(lambda _: self._forget(instance_id, running))
        return progress

    async def _current_progress(self, instance_id: uuid.UUID) -> ProgressLog:
        running = self._running.get(instance_id)
        if running is not None and running.progress is not None:
            return running.progress
        latest = await self.progress.latest(instance_id)  # it runs in another process
        return ProgressLog(self.progress, instance_id, latest.action_seq if latest else 0,
                           latest.owner_id if latest else None)

    def _forget(self, instance_id: uuid.UUID, running: _Running) -> None:
        if running.progress is not None:
            running.progress.close()  # over, with or without its final event
        if self._running.get(instance_id) is running:
            del self._running[instance_id]

    async def _take(self, instance_id: uuid.UUID, holder: str, action: Action) -> bool:
        async with self.sessions() as session:
            return await acquire_instance_lease(session, instance_id, holder, self._lease_ttl, action.value)

    async def _lease_of(self, instance_id: uuid.UUID) -> tuple[str | None, Action | None] | None:
        """Who holds the instance's lease and for what; None when the row is gone."""
        async with self.sessions() as session:
            found = (await session.execute(select(Instance.lease_holder, Instance.action)
                                           .where(Instance.id == instance_id))).first()
        if found is None:
            return None
        return found.lease_holder, Action(found.action) if found.action else None

    async def _preempt(self, instance_id: uuid.UUID, action: Action, holder: str, current_holder: str | None) -> bool:
        """Cancel the action holding the instance (here, or in another process through a cancel
        request it sees at its next renewal), then take the lease. False if it could not be had."""
        running = self._running.get(instance_id)
        if running is not None and running.holder == current_holder:
            running.preempted_by = action
            running.task.cancel()
            await asyncio.wait({running.task}, timeout=self.config.stop_grace_s + 5)
        elif current_holder is not None:
            async with self.sessions() as session:
                await request_instance_cancel(session, instance_id, current_holder)
        deadline = time.monotonic() + self.config.lease_ttl_s + self.config.stop_grace_s
        while time.monotonic() < deadline:
            if await self._take(instance_id, holder, action):
                log.info("pre-empted an action", action=str(action), instance_id=str(instance_id))
                return True
            if await self._lease_of(instance_id) is None:
                raise NotFound("No such instance.")  # deleted meanwhile, by another process
            await asyncio.sleep(0.2)
        return False

    async def _run(self, instance_id: uuid.UUID, action: Action, work: Work, progress: ProgressLog,
                   holder: str) -> None:
        outcome = Outcome(str(action), "The instance no longer exists.", failed=True)
        lease = InstanceLease(instance_id, holder, action.value)

        async def act() -> Outcome:
            async with self.sessions() as session:
                instance = await session.get(Instance, instance_id)
            return outcome if instance is None else await work(instance, progress)

        try:
            outcome = await hold(self.sessions, lease, self.config.lease_ttl_s, act, taken=True, release=False)
        except asyncio.CancelledError:
            running = self._running.get(instance_id)
            by = running.preempted_by if running is not None and running.holder == holder else None
            outcome = Outcome("cancelled", f"Cut short: {_REQUESTED[by]}." if by else
                              "Interrupted: the platform is shutting down; it carries on when it is back.",
                              failed=True)
        except LeaseLost as lost:
            outcome = Outcome("cancelled", "Cut short by a newer request on this instance."
                              if str(lost) == "cancel requested" else
                              "Interrupted: this server lost its hold on the instance; another one carries on.",
                              failed=True)
        except Exception:  # the action's own handling failed: never leave a stream open
            log.exception("instance action failed", action=str(action), instance_id=str(instance_id))
            outcome = Outcome(str(action), "Something went wrong on our side. Please try again.", failed=True)
        finally:
            log.info("action ended", action=str(action), instance_id=str(instance_id), outcome=outcome.step,
                     failed=outcome.failed)
            await self._end(progress, outcome, lease)

    async def _end(self, progress: ProgressLog, outcome: Outcome, lease: InstanceLease) -> None:
        """Emit the final event and free the lease in one transaction: to any reader, a free lease
        without a final event means its holder died (provisioner.progress). When the database
        fails that, the event is stored on its own, then the lease released, each retried: the
        stream still ends with the real outcome, and the instance is free again in seconds."""

        def final(**alongside: object) -> Awaitable[object]:
            return progress.emit(outcome.step, outcome.message, done=not outcome.failed, failed=outcome.failed,
                                 reason=outcome.message if outcome.failed else None, **alongside)

        try:
            await final(alongside=lease.release)
            return
        except Exception:
            log.warning("could not end an action with its lease; storing its end apart", exc_info=True,
                        action=lease.action, instance_id=str(lease.instance_id))
        if not await with_retries(final):
            log.error("could not store an action's final event", action=lease.action,
                      instance_id=str(lease.instance_id))
        await release_with_retries(self.sessions, lease)

    # -- actions --------------------------------------------------------------------------
    async def _deploy(self, instance: Instance, progress: ProgressLog) -> Outcome:
        began = time.monotonic()
        await self._update(instance.id, status=Status.PROVISIONING, status_reason=None, failure_streak=0,
                           next_attempt_at=None)
        failure = await self._bring_up(instance, progress)
        if failure is not None:
            await self._update(instance.id, status=Status.ERROR, status_reason=failure)
            await self._audit(instance, "instance.start_failed", {"reason": failure})
            return Outcome("failed", failure, failed=True)
        return await self._became_ready(instance, began)

    async def _recover(self, instance: Instance, progress: ProgressLog, found: dict | None) -> Outcome:
        began = time.monotonic()
        if found is not None and not self.runtime.matches(found, instance.runtime_state):
            instance.runtime_state = found  # a gateway runs for it that the row does not record
            await self._update(instance.id, runtime_state=found, runtime=self.runtime.name,
                               endpoint_url=self.runtime.endpoint(found), port=found.get("port", instance.port))
            log.info("adopting a running gateway", instance_id=str(instance.id))
        elif found is None:
            # A restart after a crash counts; finishing a deploy the platform was killed in does not.
            restarts = instance.restart_count + (1 if instance.failure_streak > 0 else 0)
            await self._update(instance.id, status=Status.PROVISIONING, restart_count=restarts)
        failure = await self._bring_up(instance, progress)
        if failure is not None:
            gave_up = await self._count_failure(instance, failure)
            return Outcome("failed" if gave_up else "retrying", failure, failed=True)
        return await self._became_ready(instance, began)

    async def _bring_up(self, instance: Instance, progress: ProgressLog) -> str | None:
        """Start the gateway (or re-adopt it) and wait until ready, counted and timed by outcome
        (clawfleet_deploys_*). The reason when it failed."""
        self.metrics.deploys_started.inc()
        began, outcome = time.monotonic(), "failed"
        try:
            failure = await self._bring_up_in_slot(instance, progress)
            outcome = "succeeded" if failure is None else "failed"
            return failure
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self.metrics.deploys_finished.labels(outcome).inc()
            self.metrics.deploy_duration.labels(outcome).observe(time.monotonic() - began)

    async def _bring_up_in_slot(self, instance: Instance, progress: ProgressLog) -> str | None:
        if self._start_slots.locked():
            await progress.emit("queued", "Waiting for a free start slot (other assistants are starting).")
        async with self._start_slots:
            warming = _WarmUp()
            try:
                fresh = await self._start_and_wait(instance, progress, warming)
            except asyncio.CancelledError:  # pre-empted: a warm-up begun early goes with it
                await warming.cancel()
                raise
            except Exception as exc:
                await warming.cancel()
                reason = str(exc) if isinstance(exc, StartFailed) else "The gateway could not be started."
                if not isinstance(exc, StartFailed):
                    log.exception("start failed", instance_id=str(instance.id))
                await self._cleanup_failed_start(instance)
                return reason
            if fresh and self._warm_up_enabled:
                await progress.emit("warming", "Warming up your assistant so that its first answer is quick.")
                await self._warm_up(instance, warming)
            else:
                await warming.cancel()
        return None

    @property
    def _warm_up_enabled(self) -> bool:
        return self.config.warm_up and self.warm_up_nonces is not None

    async def _warm_up(self, instance: Instance, warming: _WarmUp) -> None:
        """The warm-up turn of a gateway just started (begun while it got ready, or now); its
        failure never fails the start."""
        warming.ready.set()
        warming.begin(self._warm_up_turn(instance, warming.ready))
        assert warming.task is not None
        result = await warming.task
        if result.ok:
            log.info("warm-up done", instance_id=str(instance.id), seconds=round(result.seconds, 1))
        else:
            log.warning("warm-up failed; the assistant starts without it (its first answer will be slower)",
                        instance_id=str(instance.id), seconds=round(result.seconds, 1), reason=result.detail)

    def _warm_up_turn(self, instance: Instance, ready: asyncio.Event) -> Callable[[], Awaitable[WarmUpResult]]:
        nonces = self.warm_up_nonces
        assert nonces is not None
        return lambda: warm_up(self.runtime, nonces, instance.id, instance.runtime_state,
                               self.config.warm_up_timeout_s, ready)

    async def _became_ready(self, instance: Instance, began: float) -> Outcome:
        self._crash_point("after_ready")
        await self._update(instance.id, status=Status.RUNNING, status_reason=None, next_attempt_at=None,
                           running_since=utcnow(), not_ready_since=None)
        return Outcome("ready", f"Your assistant is running (started in {time.monotonic() - began:.0f} s).")

    async def _count_failure(self, instance: Instance, why: str) -> bool:
        """One more failure in a row: back off, or give up and tell the owner. True when given up."""
        async with self.sessions() as session:
            row = await session.get(Instance, instance.id)
            if row is None:
                return True
            step = after_failure(row.failure_streak, utcnow(), self.config.backoff)
            row.failure_streak = step.streak
            row.next_attempt_at = step.next_attempt_at
            row.running_since = None
            if step.gave_up:
                tail = await self._log_tail(instance, 8)
                row.status = check_move(row.status, Status.ERROR)
                row.status_reason = (f"{why} It failed {step.streak} times in a row, so it was not restarted again."
                                     + (f" Last log lines:\n{tail}" if tail else ""))
            else:
                delay = self.config.backoff.delay(step.streak)
                row.status = check_move(row.status, Status.PROVISIONING)
                row.status_reason = (f"{why} Restarting in {delay:.0f} s "
                                     f"(failure {step.streak} of {MAX_FAILURES} in a row).")
            reason, owner_id = row.status_reason, row.user_id
            await session.commit()
        await self._audit(instance, "instance.gave_up" if step.gave_up else "instance.crashed",
                          {"failures": step.streak, "reason": why})
        log.warning("instance failure", instance_id=str(instance.id), failures=step.streak, gave_up=step.gave_up)
        if step.gave_up:
            await self.tell_owner(owner_id, "Your assistant stopped and could not be restarted "
                                         f"({step.streak} failures in a row).\n\n{reason}\n\n"
                                         "Check its model and key, then start it again.")
        return step.gave_up

    async def tell_owner(self, user_id: uuid.UUID, text: str) -> None:
        try:
            await self.notifier.notify(user_id, text)
        except Exception:  # telling the owner must never break the platform's own work
            log.exception("could not notify the owner", user_id=str(user_id))

    async def _start_and_wait(self, instance: Instance, progress: ProgressLog, warming: _WarmUp) -> bool:
        """The whole start, engine calls included, under CLAWFLEET_START_TIMEOUT_S: a runtime that
        never answers fails the start with a reason instead of holding the instance forever.
        True when a gateway was started, False when a running one was adopted."""
        deadline = time.monotonic() + self.config.start_timeout_s
        phase = "prepare"
        try:
            async with asyncio.timeout(self.config.start_timeout_s):
                await progress.emit("config", "Preparing your assistant's configuration.")
                observed = await self.runtime.status(instance.id, instance.runtime_state)
                adopted = observed.state is GatewayState.UP
                if adopted:
                    port = instance.runtime_state["port"]  # re-adopt: the gateway keeps its port
                else:
                    async with self.sessions() as session:
                        port = await self.ports.assign(session, instance.id)
                request = await self._launch_request(instance, port)
                await progress.emit("starting", "Starting the OpenClaw gateway.")
                self._crash_point("before_start")
                phase = "start"
                started = await self.runtime.start(request, instance.runtime_state)
                self._crash_point("after_spawn")
                async with self.sessions() as session:
                    row = await session.get(Instance, instance.id)
                    row.runtime_state = started.state
                    row.endpoint_url = started.endpoint_url
                    row.runtime = self.runtime.name
                    await session.commit()
                instance.runtime_state = started.state
                await progress.emit("waiting", "Waiting for the gateway to be ready (about 15 seconds).")
                phase = "ready"
                live = None
                if not adopted and self._warm_up_enabled:  # the warm-up's CLI starts while the gateway gets ready
                    live = functools.partial(warming.begin, self._warm_up_turn(instance, warming.ready))
                await self._wait_ready(instance, started.endpoint_url, deadline, live)
                return not adopted
        except TimeoutError:
            what = {"prepare": "The platform could not prepare the gateway",
                    "start": f"The {self.runtime.name} runtime did not start the gateway",
                    "ready": "The gateway was not ready"}[phase]
            raise StartFailed(f"{what} within {self.config.start_timeout_s:.0f} seconds.") from None

    async def _wait_ready(self, instance: Instance, endpoint_url: str, deadline: float,
                          when_live: Callable[[], None] | None = None) -> None:
        """Until /readyz answers; `when_live` is called once, as soon as /healthz does."""
        while time.monotonic() < deadline:
            if await probe(self.http, f"{endpoint_url}/readyz"):
                return
            if when_live is not None and await probe(self.http, f"{endpoint_url}/healthz"):
                when_live()
                when_live = None
            observed = await self.runtime.status(instance.id, instance.runtime_state)
            if observed.state is not GatewayState.UP:
                raise StartFailed(f"The gateway stopped while starting. {await self._last_log_line(instance)}".strip())
            await asyncio.sleep(0.5)
        raise StartFailed(
            f"The gateway was not ready within {self.config.start_timeout_s:.0f} seconds. "
            f"{await self._last_log_line(instance)}".strip()
        )

    async def _crashed(self, instance: Instance, detail: str) -> Outcome:
        if instance.status != Status.RUNNING:
            return Outcome(instance.status, "Nothing to do: it is not meant to be running.")
        if detail != "hung" and (await self.runtime.status(instance.id, instance.runtime_state)).state is GatewayState.UP:
            return Outcome(instance.status, "The gateway runs.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        why = "The gateway stopped answering." if detail == "hung" else "The gateway stopped unexpectedly."
        gave_up = await self._count_failure(instance, why)
        return Outcome("failed" if gave_up else "retrying", why, failed=True)

    async def _stop(self, instance: Instance, progress: ProgressLog, status: Status = Status.STOPPED,
                    reason: str | None = None) -> Outcome:
        await progress.emit("stopping", "Stopping the gateway.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        await self._update(instance.id, status=status, status_reason=reason, failure_streak=0,
                           next_attempt_at=None, running_since=None, not_ready_since=None)
        return Outcome(status, reason or "Your assistant is stopped.")

    async def _halt(self, instance: Instance, progress: ProgressLog) -> Outcome:
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        return Outcome(instance.status, "The gateway is stopped.")

    async def _restart(self, instance: Instance, progress: ProgressLog) -> Outcome:
        await progress.emit("stopping", "Stopping the gateway.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        return await self._deploy(instance, progress)

    async def _free_memory(self, instance: Instance, progress: ProgressLog) -> Outcome:
        if instance.status != Status.RUNNING:
            return Outcome(instance.status, "Nothing to do: it is not running.")
        busy = await gateway_busy(self.runtime, instance.id, instance.runtime_state)
        if busy is not None:
            return Outcome(instance.status, f"Not restarted now: {busy}.")
        await progress.emit("stopping", "Restarting the gateway at a quiet moment, to free its memory.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        async with self.sessions() as session:
            await session.execute(update(Instance).where(Instance.id == instance.id)
                                  .values(memory_restarts=Instance.memory_restarts + 1))
            audit.record(session, actor="platform", action="instance.memory_restart", user_id=instance.user_id,
                         instance_id=instance.id, details={"memory_mb": instance.memory_mb})
            await session.commit()
        return await self._deploy(instance, progress)

    async def _delete(self, instance: Instance, progress: ProgressLog, keep_data: bool) -> Outcome:
        await self._update(instance.id, status=Status.DELETING, status_reason=None)
        await progress.emit(Status.DELETING, "Stopping the gateway and removing the instance.")
        await self.runtime.remove(instance.id, instance.runtime_state, keep_data)
        if self.backups is not None:  # their keys are sealed on rows that go with the instance's
            await self.backups.discard_instance(instance.id)
        async with self.sessions() as session:
            row = await session.get(Instance, instance.id)
            if row is not None:
                await session.delete(row)
            await session.commit()
        return Outcome("deleted", "Your assistant is deleted." + (" Its data is kept." if keep_data else ""))

    async def _backup(self, instance: Instance, progress: ProgressLog, kind: str) -> Outcome:
        await progress.emit("archiving", "Archiving your assistant's state and encrypting it.")
        try:
            backup = await self._keeper.take(self.runtime, instance, kind)
        except StateArchiveFailed as exc:
            log.warning("instance backup failed", instance_id=str(instance.id), reason=str(exc))
            return Outcome("failed", f"The backup failed: {exc}", failed=True)
        await self._audit(instance, "instance.backup", {"backup_id": str(backup.id), "kind": kind,
                                                        "size": backup.size})
        return Outcome("backed_up", f"Backed up ({size_text(backup.size)}).")

    async def _restore(self, instance: Instance, progress: ProgressLog, backup_id: uuid.UUID) -> Outcome:
        keeper = self._keeper
        async with self.sessions() as session:
            backup = await session.get(InstanceBackup, backup_id)
        if backup is None or backup.user_id != instance.user_id:
            return Outcome("failed", "That backup no longer exists.", failed=True)
        if (await self.runtime.status(instance.id, instance.runtime_state)).state is not GatewayState.GONE:
            await progress.emit("safety", "Backing up the current state first (kept as a pre-restore backup).")
            try:  # not pruned yet: the backup being restored may be the oldest kept
                await keeper.take(self.runtime, instance, "pre-restore", prune=False)
            except StateArchiveFailed as exc:
                return Outcome("failed", f"Nothing was changed: the pre-restore backup failed: {exc}", failed=True)
        await progress.emit("stopping", "Stopping the gateway.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        await progress.emit("restoring", f"Restoring the backup of {backup.created_at:%Y-%m-%d %H:%M} UTC.")
        try:
            await self.runtime.unpack_state(instance.id, instance.runtime_state, keeper.read(backup), backup.size)
            await progress.emit("doctor", "Checking the restored state (openclaw doctor).")
            doctor = await self.runtime.exec(instance.id, instance.runtime_state, DOCTOR_ARGV)
            check("doctor", doctor.exit_code, doctor.output)
        except (StateArchiveFailed, BackupMissing, BackupCorrupt) as exc:
            await self.runtime.settle_state(instance.id, instance.runtime_state, keep_restored=False)
            await self._deploy(instance, progress)  # back up on the state it had
            return Outcome("failed", f"The restore failed and your assistant kept its state: {exc}", failed=True)
        started = await self._deploy(instance, progress)
        if started.failed:
            await progress.emit("rolling_back", "The restored state did not start: putting the previous one back.")
            await self.runtime.settle_state(instance.id, instance.runtime_state, keep_restored=False)
            await self._deploy(instance, progress)
            return Outcome("failed", f"The restored state did not start ({started.message}); your assistant is "
                                     "back on its state from before the restore.", failed=True)
        await self.runtime.settle_state(instance.id, instance.runtime_state, keep_restored=True)
        await keeper.prune(instance)
        await self._audit(instance, "instance.restore", {"backup_id": str(backup.id),
                                                         "from_instance": str(backup.instance_id)})
        return Outcome("restored", f"Restored the backup of {backup.created_at:%Y-%m-%d %H:%M} UTC. {started.message}")

    @property
    def _keeper(self) -> BackupKeeper:
        if self.backups is None:
            raise RuntimeError("instance backups are not configured")
        return self.backups

    # -- helpers --------------------------------------------------------------------------
    async def _launch_request(self, instance: Instance, port: int) -> LaunchRequest:
        """What the runtime starts. Memory and CPU come from the owner's entitlements, recorded on
        the row so the memory budget counts exactly what the container is given."""
        async with self.sessions() as session:
            row = await session.get(Instance, instance.id)
            owner = await session.get(User, instance.user_id)
            allowance = await self.entitlements.allowance(owner)
            row.memory_mb, row.cpus = allowance.memory_mb, allowance.cpus
            credential = open_from(self.keyring, row, "model_credential_sealed")
            if credential is None:  # made before the model gateway: it gets its credential now
                credential = issue_credential(self.keyring, row)
            await session.commit()
        if self.config.model_gateway_port is None:
            raise StartFailed("The platform's model gateway is not running, so the assistant could not reach "
                              "its model. Tell the operator.")
        return LaunchRequest(
            instance_id=instance.id,
            port=port,
            provider=instance.model_provider,
            model=instance.model,
            model_credential=credential,
            gateway_token=open_from(self.keyring, instance, "gateway_secret_sealed"),
            bot_token=open_from(self.keyring, instance, "telegram_bot_token_sealed"),
            telegram_allow_from=instance.telegram_allow_from,
            telegram_api_root=self.config.telegram_api_root,
            model_url=route_url(self.config.model_gateway_port, instance.id),
            memory_mb=allowance.memory_mb,
            cpus=allowance.cpus,
            owner_id=instance.user_id,
            control_ui_origin=self.config.instance_urls.url(instance.subdomain) if self.config.instance_urls else None,
        )

    async def _cleanup_failed_start(self, instance: Instance) -> None:
        try:
            async with asyncio.timeout(self.config.stop_grace_s + 10):  # a hung engine must not hold the lease
                await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        except Exception:
            log.exception("cleanup after a failed start failed", instance_id=str(instance.id))

    async def _log_tail(self, instance: Instance, lines: int) -> str:
        """The gateway log's last meaningful lines, secrets masked: fit for the owner's eyes."""
        found = [line async for line in self.runtime.logs(instance.id, instance.runtime_state, lines * 2, False)]
        meaningful = [line.rstrip()[:300] for line in found if line.strip()]
        return redact("\n".join(meaningful[-lines:]))

    async def _last_log_line(self, instance: Instance) -> str:
        tail = await self._log_tail(instance, 1)
        return f"Last log line: {tail}" if tail else ""

    async def _update(self, instance_id: uuid.UUID, **values: object) -> None:
        async with self.sessions() as session:
            row = await session.get(Instance, instance_id)
            if row is not None:
                for name, value in values.items():
                    setattr(row, name, check_move(row.status, value) if name == "status" else value)
                await session.commit()

    def _crash_point(self, name: str) -> None:
        if self.config.crash_at == name:
            log.warning("crash point reached: killing this process", point=name)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _audit(self, instance: Instance, action: str, details: dict) -> None:
        async with self.sessions() as session:
            audit.record(session, actor="platform", action=action, user_id=instance.user_id,
                         instance_id=instance.id, details=details)
            await session.commit()


async def probe(http: aiohttp.ClientSession, url: str, timeout: float = 5.0) -> bool:
    """True when the gateway's URL answers 200."""
    try:
        async with http.get(url, headers=PROBE_HEADERS, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
