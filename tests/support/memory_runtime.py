"""An in-memory runtime for the manager's logic tests: each "gateway" is a tiny HTTP server on
loopback answering /healthz and /readyz, so the manager's real readiness probe is exercised.

Variants, one line each in a test (as JupyterHub's tests swap spawners):
  MemoryRuntime()                         ready at once
  MemoryRuntime(ready_after=2.0)          ready after two seconds
  MemoryRuntime(never_ready=True)         live, never ready (start timeout)
  MemoryRuntime(exits_on_start=True)      "process" exits right after spawning
  MemoryRuntime(hangs_on_start=True)      the engine call to start never returns

Its instance backups behave as the real runtimes' do, over a few bytes of state per instance
(`states`, a test writes what it wants there): `archive_state` yields a gzipped tar of it (what
`openclaw backup create` makes), `unpack_state` puts an archive's state in place and keeps the
replaced one aside until `settle_state`. `backups_fail = True` makes archiving fail as a failed
`openclaw backup create` does; `archive_delay_s` makes it take that long.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from provisioner.runtimes.base import (
    ExecResult,
    GatewayState,
    LaunchRequest,
    Listed,
    Observed,
    ResourceUse,
    Runtime,
    Started,
)
from provisioner.runtimes.state_archives import StateArchiveFailed

STATE_FILE = "state/workspace/notes.md"  # where an archive holds an instance's `states` entry


@dataclass
class FakeGateway:
    request: LaunchRequest
    runner: web.AppRunner
    started: float = field(default_factory=time.monotonic)
    log: list[str] = field(default_factory=list)
    ready: bool = True  # a test turns it off to play a broken channel


class MemoryRuntime(Runtime):
    name = "memory"

    def __init__(self, *, ready_after: float = 0.0, never_ready: bool = False, exits_on_start: bool = False,
                 hangs_on_start: bool = False) -> None:
        self.ready_after = ready_after
        self.never_ready = never_ready
        self.exits_on_start = exits_on_start
        self.hangs_on_start = hangs_on_start
        self.gateways: dict[uuid.UUID, FakeGateway] = {}
        self.starts: list[LaunchRequest] = []
        self.start_times: list[float] = []  # monotonic, one per start
        self.stops: list[uuid.UUID] = []
        self.removed: dict[uuid.UUID, bool] = {}  # instance id -> keep_data
        self.logs_by_instance: dict[uuid.UUID, list[str]] = {}
        self.pairing_requests: dict[uuid.UUID, dict[str, int]] = {}  # a test adds code -> sender id
        self.owners: dict[uuid.UUID, int] = {}  # the sender each instance's config now allows
        self.states: dict[uuid.UUID, bytes] = {}  # each instance's state, as its backups hold it
        self.states_aside: dict[uuid.UUID, bytes] = {}  # replaced by a restore, until it is settled
        self.backups_fail = False
        self.archive_delay_s = 0.0

    async def start(self, request: LaunchRequest, state: dict[str, Any]) -> Started:
        if request.instance_id in self.gateways:  # re-adopted, not started twice
            return Started(self.endpoint(state), state)
        self.starts.append(request)
        self.start_times.append(time.monotonic())
        self.logs_by_instance.setdefault(request.instance_id, []).append(f"starting {request.provider}/{request.model}")
        if self.hangs_on_start:
            await asyncio.Event().wait()  # as an engine that accepted the call and never answers
        if self.exits_on_start:
            self.logs_by_instance[request.instance_id].append("Error: config invalid, exiting (code 78)")
            return Started("http://127.0.0.1:9", {"version": 1, "exited": True})
        app = web.Application()
        began = time.monotonic()

        async def healthz(_):
            return web.json_response({"ok": True, "status": "live"})

        async def readyz(_):
            gateway = self.gateways.get(request.instance_id)
            if gateway is not None and not gateway.ready:
                return web.json_response({"ready": False, "failing": ["telegram"]}, status=503)
            ready = not self.never_ready and time.monotonic() - began >= self.ready_after
            return web.json_response({"ready": ready}, status=200 if ready else 503)

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.gateways[request.instance_id] = FakeGateway(request, runner)
        state = {"version": 1, "port": port}
        return Started(self.endpoint(state), state)

    async def stop(self, instance_id: uuid.UUID, state: dict[str, Any], timeout: float) -> None:
        self.stops.append(instance_id)
        gateway = self.gateways.pop(instance_id, None)
        if gateway is not None:
            await gateway.runner.cleanup()

    async def status(self, instance_id: uuid.UUID, state: dict[str, Any]) -> Observed:
        if instance_id in self.gateways:
            return Observed(GatewayState.UP)
        return Observed(GatewayState.DOWN if instance_id in self.logs_by_instance else GatewayState.GONE)

    async def list_all(self) -> list[Listed]:
        return [Listed(i, Observed(GatewayState.UP), {"version": 1, "port": gateway.runner.addresses[0][1]})
                for i, gateway in self.gateways.items()]

    async def sample(self, instance_id: uuid.UUID, state: dict[str, Any]) -> ResourceUse | None:
        gateway = self.gateways.get(instance_id)
        if gateway is None:
            return None
        # figures no real gateway would show: 321 MB, and a tenth of a core since it started
        return ResourceUse(321 * 1024 * 1024, (time.monotonic() - gateway.started) / 10)

    def endpoint(self, state: dict[str, Any]) -> str:
        return f"http://127.0.0.1:{state.get('port', 9)}"

    async def crash(self, instance_id: uuid.UUID) -> None:
        """The gateway dies on its own (as a SIGKILL would leave it)."""
        gateway = self.gateways.pop(instance_id)
        self.logs_by_instance[instance_id].append("Killed")
        await gateway.runner.cleanup()

    async def logs(self, instance_id: uuid.UUID, state: dict[str, Any], tail: int,
                   follow: bool) -> AsyncIterator[str]:
        for line in self.logs_by_instance.get(instance_id, [])[-tail:] if tail else []:
            yield line

    async def exec(self, instance_id: uuid.UUID, state: dict[str, Any], argv: list[str]) -> ExecResult:
        return ExecResult(0, " ".join(argv))

    async def approve_pairing(self, instance_id: uuid.UUID, state: dict[str, Any], code: str) -> int | None:
        sender = self.pairing_requests.get(instance_id, {}).get(code)
        if sender is not None:
            self.owners[instance_id] = sender
        return sender

    async def archive_state(self, instance_id: uuid.UUID, state: dict[str, Any]) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.archive_delay_s)
        if self.backups_fail:
            raise StateArchiveFailed("openclaw backup create failed (exit 1): disk full")
        archive = state_archive(self.states.get(instance_id, b""))
        for start in range(0, len(archive), 1024):  # in pieces, as a stream comes
            yield archive[start:start + 1024]

    async def unpack_state(self, instance_id: uuid.UUID, state: dict[str, Any], archive: AsyncIterator[bytes],
                           size: int) -> None:
        received = b"".join([chunk async for chunk in archive])
        with tarfile.open(fileobj=io.BytesIO(received), mode="r:gz") as tar:
            restored = tar.extractfile(STATE_FILE).read()
        self.states_aside[instance_id] = self.states.get(instance_id, b"")
        self.states[instance_id] = restored

    async def settle_state(self, instance_id: uuid.UUID, state: dict[str, Any], keep_restored: bool) -> None:
        if instance_id not in self.states_aside:
            return
        aside = self.states_aside.pop(instance_id)
        if not keep_restored:
            self.states[instance_id] = aside

    async def remove(self, instance_id: uuid.UUID, state: dict[str, Any], keep_data: bool) -> None:
        await self.stop(instance_id, state, 0)
        self.removed[instance_id] = keep_data

    async def close(self) -> None:
        for instance_id in list(self.gateways):
            await self.stop(instance_id, {}, 0)
        await asyncio.sleep(0)


def state_archive(content: bytes) -> bytes:
    """A gzipped tar holding `content` at STATE_FILE, the shape of an openclaw backup archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        entry = tarfile.TarInfo(STATE_FILE)
        entry.size, entry.mtime = len(content), 0
        tar.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()
