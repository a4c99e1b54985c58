"""The lifecycle manager: runs actions on instances in the background, one at a time each.

It owns the orchestration the runtimes leave out (JupyterHub's split): the start timeout, the
readiness wait on the gateway's /readyz, cleanup when a start fails, the persisted runtime
state and status (with a reason the owner can read), progress events, the per-instance row
lease, and a cap on how many gateways start at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.leases import acquire_instance_lease, release_instance_lease
from db.models import AuditLog, Instance
from db.sealing import KeyRing, open_from
from provisioner.errors import Conflict
from provisioner.ports import PortAllocator
from provisioner.progress import ProgressHub, ProgressLog
from provisioner.runtimes.base import LaunchRequest, Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ManagerConfig:
    start_timeout_s: float = 120
    stop_grace_s: float = 10
    max_concurrent_starts: int = 2
    telegram_api_root: str | None = None  # set when not Telegram's own (a proxy, or a test fake)
    provider_urls: dict[str, str] | None = None
    memory_mb: int = 1536
    cpus: float = 1.0


class StartFailed(Exception):
    """A start that did not reach ready; the message is for the instance's owner."""


@dataclass(frozen=True)
class Outcome:
    """How an action ended. Emitted as the stream's last event only once the lease is free, so
    a client that sees it can act on the instance again at once."""

    step: str
    message: str
    failed: bool = False


Action = Callable[[Instance, ProgressLog], Awaitable[Outcome]]


class InstanceManager:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], runtime: Runtime, keyring: KeyRing,
                 config: ManagerConfig, http: aiohttp.ClientSession, *, holder: str | None = None,
                 progress: ProgressHub | None = None, ports: PortAllocator | None = None) -> None:
        self.sessions = sessions
        self.runtime = runtime
        self.keyring = keyring
        self.config = config
        self.http = http
        self.holder = holder or f"manager-{uuid.uuid4().hex[:12]}"
        self.progress = progress or ProgressHub()
        self.ports = ports or PortAllocator()
        self._start_slots = asyncio.Semaphore(config.max_concurrent_starts)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- entry points: take the lease now (so callers learn "busy" at once), work in background
    async def deploy(self, instance_id: uuid.UUID) -> ProgressLog:
        return await self._launch(instance_id, "deploy", self._deploy)

    async def stop(self, instance_id: uuid.UUID) -> ProgressLog:
        return await self._launch(instance_id, "stop", self._stop)

    async def restart(self, instance_id: uuid.UUID) -> ProgressLog:
        return await self._launch(instance_id, "restart", self._restart)

    async def delete(self, instance_id: uuid.UUID, keep_data: bool) -> ProgressLog:
        return await self._launch(instance_id, "delete", lambda i, p: self._delete(i, p, keep_data))

    async def wait_idle(self) -> None:
        """Let every action in flight finish (tests, and graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _launch(self, instance_id: uuid.UUID, name: str, action: Action) -> ProgressLog:
        ttl = timedelta(seconds=self.config.start_timeout_s * 2 + self.config.stop_grace_s + 60)
        holder = f"{self.holder}/{uuid.uuid4().hex[:8]}"  # per action: this process's own actions exclude each other too
        async with self.sessions() as session:
            if not await acquire_instance_lease(session, instance_id, holder, ttl):
                raise Conflict("Another action is running on this instance. Wait for it to finish.")
            owner_id = await session.scalar(select(Instance.user_id).where(Instance.id == instance_id))
        progress = self.progress.begin(instance_id, owner_id)
        task = asyncio.create_task(self._run(instance_id, name, action, progress, holder), name=f"{name}:{instance_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return progress

    async def _run(self, instance_id: uuid.UUID, name: str, action: Action, progress: ProgressLog,
                   holder: str) -> None:
        outcome = Outcome(name, "The instance no longer exists.", failed=True)
        try:
            async with self.sessions() as session:
                instance = await session.get(Instance, instance_id)
            if instance is not None:
                outcome = await action(instance, progress)
        except Exception:  # the action's own handling failed: never leave a stream open
            log.exception("instance action failed", action=name, instance_id=str(instance_id))
            outcome = Outcome(name, "Something went wrong on our side. Please try again.", failed=True)
        finally:
            async with self.sessions() as session:
                await release_instance_lease(session, instance_id, holder)
            await progress.emit(outcome.step, outcome.message, done=not outcome.failed, failed=outcome.failed,
                                reason=outcome.message if outcome.failed else None)

    # -- actions --------------------------------------------------------------------------
    async def _deploy(self, instance: Instance, progress: ProgressLog) -> Outcome:
        await self._set_status(instance.id, "provisioning", None)
        if self._start_slots.locked():
            await progress.emit("queued", "Waiting for a free start slot (other assistants are starting).")
        async with self._start_slots:
            started_at = time.monotonic()
            try:
                await self._start_and_wait(instance, progress)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, StartFailed) else "The gateway could not be started."
                if not isinstance(exc, StartFailed):
                    log.exception("start failed", instance_id=str(instance.id))
                await self._cleanup_failed_start(instance)
                await self._set_status(instance.id, "error", reason)
                await self._audit(instance, "instance.start_failed", {"reason": reason})
                return Outcome("failed", reason, failed=True)
        await self._set_status(instance.id, "running", None)
        took = time.monotonic() - started_at
        return Outcome("ready", f"Your assistant is running (started in {took:.0f} s).")

    async def _start_and_wait(self, instance: Instance, progress: ProgressLog) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        await progress.emit("config", "Preparing your assistant's configuration.")
        observed = await self.runtime.status(instance.id, instance.runtime_state)
        if observed.state == "running":
            port = instance.runtime_state["port"]  # re-adopt: the gateway keeps its port
        else:
            async with self.sessions() as session:
                port = await self.ports.assign(session, instance.id)
        request = self._launch_request(instance, port)
        await progress.emit("starting", "Starting the OpenClaw gateway.")
        started = await self.runtime.start(request, instance.runtime_state)
        async with self.sessions() as session:
            row = await session.get(Instance, instance.id)
            row.runtime_state = started.state
            row.endpoint_url = started.endpoint_url
            row.runtime = self.runtime.name
            await session.commit()
        instance.runtime_state = started.state
        await progress.emit("waiting", "Waiting for the gateway to be ready (about 15 seconds).")
        await self._wait_ready(instance, started.endpoint_url, deadline)

    async def _wait_ready(self, instance: Instance, endpoint_url: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if await probe(self.http, f"{endpoint_url}/readyz"):
                return
            observed = await self.runtime.status(instance.id, instance.runtime_state)
            if observed.state != "running":
                raise StartFailed(f"The gateway stopped while starting. {await self._last_log_line(instance)}".strip())
            await asyncio.sleep(0.5)
        raise StartFailed(
            f"The gateway was not ready within {self.config.start_timeout_s:.0f} seconds. "
            f"{await self._last_log_line(instance)}".strip()
        )

    async def _stop(self, instance: Instance, progress: ProgressLog) -> Outcome:
        await progress.emit("stopping", "Stopping the gateway.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        await self._set_status(instance.id, "stopped", None)
        return Outcome("stopped", "Your assistant is stopped.")

    async def _restart(self, instance: Instance, progress: ProgressLog) -> Outcome:
        await progress.emit("stopping", "Stopping the gateway.")
        await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        return await self._deploy(instance, progress)

    async def _delete(self, instance: Instance, progress: ProgressLog, keep_data: bool) -> Outcome:
        await self._set_status(instance.id, "deleting", None)
        await progress.emit("deleting", "Stopping the gateway and removing the instance.")
        await self.runtime.remove(instance.id, instance.runtime_state, keep_data)
        async with self.sessions() as session:
            row = await session.get(Instance, instance.id)
            if row is not None:
                await session.delete(row)
            await session.commit()
        return Outcome("deleted", "Your assistant is deleted." + (" Its data is kept." if keep_data else ""))

    # -- helpers --------------------------------------------------------------------------
    def _launch_request(self, instance: Instance, port: int) -> LaunchRequest:
        provider_urls = self.config.provider_urls or {}
        return LaunchRequest(
            instance_id=instance.id,
            port=port,
            provider=instance.model_provider,
            model=instance.model,
            api_key=open_from(self.keyring, instance, "api_key_sealed"),
            gateway_token=open_from(self.keyring, instance, "gateway_secret_sealed"),
            bot_token=open_from(self.keyring, instance, "telegram_bot_token_sealed"),
            telegram_allow_from=instance.telegram_allow_from,
            telegram_api_root=self.config.telegram_api_root,
            provider_base_url=provider_urls.get(instance.model_provider),
            memory_mb=self.config.memory_mb,
            cpus=self.config.cpus,
        )

    async def _cleanup_failed_start(self, instance: Instance) -> None:
        try:
            await self.runtime.stop(instance.id, instance.runtime_state, self.config.stop_grace_s)
        except Exception:
            log.exception("cleanup after a failed start failed", instance_id=str(instance.id))

    async def _last_log_line(self, instance: Instance) -> str:
        lines = [line async for line in self.runtime.logs(instance.id, instance.runtime_state, 5, False)]
        meaningful = [line.strip() for line in lines if line.strip()]
        return f"Last log line: {meaningful[-1][:300]}" if meaningful else ""

    async def _set_status(self, instance_id: uuid.UUID, status: str, reason: str | None) -> None:
        async with self.sessions() as session:
            row = await session.get(Instance, instance_id)
            if row is not None:
                row.status = status
                row.status_reason = reason
                await session.commit()

    async def _audit(self, instance: Instance, action: str, details: dict) -> None:
        async with self.sessions() as session:
            session.add(AuditLog(user_id=instance.user_id, instance_id=instance.id, actor="platform",
                                 action=action, details=details))
            await session.commit()


async def probe(http: aiohttp.ClientSession, url: str, timeout: float = 5.0) -> bool:
    """True when the URL answers 200."""
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
