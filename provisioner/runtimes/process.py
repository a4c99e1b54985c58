"""The process runtime: each instance is an `openclaw gateway run` child process.

For trying ClawFleet and for a single trusted operator: gateways run as the platform's user and
OpenClaw agents can run commands, so tenants are not isolated from each other. Production with
strangers uses the docker runtime.

Each gateway runs in a session of its own (it outlives the platform; the next start re-adopts
it) with its own HOME, XDG_CACHE_HOME, TMPDIR, working directory, state dir and log files under
DATA_DIR/instances/<id>/, and an environment built from scratch: the platform's own variables
(CLAWFLEET_SECRET_KEYS among them) never reach it. Its gateway token and bot token are files
(0600) in its secrets/ directory, rewritten before each start, not variables, which any process
of the same user could read in /proc/<pid>/environ. The files are no secret from the other
gateways either (one OS user): that is what "single trusted operator" means here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from db.private_files import private_dir
from provisioner.openclaw.config import write_config, write_secret_files
from provisioner.openclaw.gateway import Placement, build_gateway, placement_env
from provisioner.openclaw.install import OpenClawInstall
from provisioner.openclaw.pairing import STATE_DB, read_request, sender_of, with_owner
from provisioner.ports import can_bind
from provisioner.runtimes import procfs
from provisioner.runtimes.base import (ExecResult, GatewayState, LaunchRequest, Listed, Observed, ResourceUse,
                                       Runtime, Started)
from provisioner.runtimes.logfiles import follow_lines, open_log, rotate_if_large, tail_lines
from provisioner.runtimes import state_archives as archives

log = structlog.get_logger(__name__)

STATE_VERSION = 1
# Lean profile (measured: 922 MB instead of 1,147 MB idle, ready 1.5 s later).
LEAN_HEAP_MB = 384
INSTANCE_SUBDIRS = ("state", "home", "cache", "tmp", "logs")
GATEWAY_LOG = "logs/gateway.log"  # the gateway's stdout and stderr, in its instance dir
# OpenClaw's launcher keeps Node's compile cache here under TMPDIR (openclaw.mjs; setting
# NODE_COMPILE_CACHE instead makes it respawn itself and keep a parent process).
COMPILE_CACHE_LINK = "tmp/node-compile-cache"
BACKUPS_SUBDIR = "backups"  # archives on their way in or out: beside the state dir, never inside it
PREVIOUS_STATE = "state.previous"  # the state a restore replaced, until its start succeeded
READ_BYTES = 1024 * 1024


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, data_dir: Path, install: OpenClawInstall, *, log_max_bytes: int = 10 * 1024 * 1024,
                 log_backups: int = 1, log_check_s: float = 5.0, shared_compile_cache: bool = True) -> None:
        self.instances_dir = (data_dir / "instances").resolve()
        self.deleted_dir = (data_dir / "deleted").resolve()
        self.install = install
        self.shared_compile_cache = shared_compile_cache
        self.log_max_bytes = log_max_bytes
        self.log_backups = log_backups
        self.log_check_s = log_check_s
        self._log_keeper: asyncio.Task | None = None

    # -- layout ---------------------------------------------------------------------------
    def instance_dir(self, instance_id: uuid.UUID) -> Path:
        return self.instances_dir / str(instance_id)

    def gateway_log(self, instance_id: uuid.UUID) -> Path:
        return self.instance_dir(instance_id) / GATEWAY_LOG

    def make_layout(self, instance_id: uuid.UUID) -> Path:
        """The instance's directory and the directories inside it, all 0700, made when missing."""
        home = private_dir(self.instance_dir(instance_id))
        for sub in INSTANCE_SUBDIRS:
            private_dir(home / sub)
        self._link_compile_cache(home / COMPILE_CACHE_LINK)
        return home

    def _link_compile_cache(self, link: Path) -> None:
        """Every gateway of this OpenClaw version reads and fills one compile cache, as the
        docker image's: a new instance starts (and answers its first turn) without compiling
        what earlier ones compiled. Node checks each entry against its source's hash, so a
        stale or torn entry is recompiled, never run. The gateways share a user in this runtime
        anyway (they can read each other's files), so the cache opens no new path between them."""
        if not self.shared_compile_cache:
            if link.is_symlink():
                link.unlink()  # back to a cache of its own
            return
        if link.is_symlink() or link.exists():
            return  # linked already, or filled on its own before sharing was turned on
        private_dir(self.install.compile_cache_dir)
        link.symlink_to(self.install.compile_cache_dir, target_is_directory=True)

    def _own_env(self, instance_id: uuid.UUID) -> dict[str, str]:
        """What this runtime adds to the gateway's own variables: Node on PATH, and dirs of its own."""
        home = self.instance_dir(instance_id)
        return {
            **self.install.env(),
            "HOME": str(home / "home"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "TMPDIR": str(home / "tmp"),
            "LANG": "C.UTF-8",
            "CLAWFLEET_INSTANCE_ID": str(instance_id),
        }

    # -- logs -----------------------------------------------------------------------------
    def keep_logs(self) -> None:
        """Rotate the gateways' logs by size, every few seconds while they run (the gateway
        cannot rotate its own stdout); started with the first gateway started or found."""
        if self._log_keeper is None or self._log_keeper.done():
            self._log_keeper = asyncio.create_task(self._keep_logs(), name="process-runtime-logs")

    async def _keep_logs(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.rotate_logs)
            except OSError:
                log.exception("rotating the gateway logs failed")
            await asyncio.sleep(self.log_check_s)

    def rotate_logs(self) -> None:
        for log_path in self.instances_dir.glob(f"*/{GATEWAY_LOG}"):
            if rotate_if_large(log_path, self.log_max_bytes, self.log_backups):
                log.info("gateway log rotated", instance_id=log_path.parent.parent.name)

    async def close(self) -> None:
        if self._log_keeper is not None:
            self._log_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_keeper

    # -- contract -------------------------------------------------------------------------
    async def start(self, request: LaunchRequest, state: dict[str, Any]) -> Started:
        instance_id = request.instance_id
        self.keep_logs()
        if (await self.status(instance_id, state)).state is GatewayState.UP:
            return Started(self.endpoint(state), state)  # re-adopted, not started twice
        home = self.make_layout(instance_id)
        place = placement(home)
        gateway = build_gateway(request, place)
        self.write_config(gateway.config, place.config_path)
        write_secret_files(place.secrets_dir, gateway.secret_files)  # today's tokens: rotated at each start
        env = self._own_env(instance_id) | gateway.env
        with open_log(self.gateway_log(instance_id)) as out:
            process = await asyncio.create_subprocess_exec(
                *self.install.argv("gateway", "run"),
                cwd=home,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # survives the platform; a group we can signal as one
                umask=0o077,  # what the gateway writes in its directories stays private too
            )
        new_state = {
            "version": STATE_VERSION,
            "pid": process.pid,
            "started_at": procfs.start_time(process.pid),
            "port": request.port,
        }
        log.info("gateway spawned", instance_id=str(instance_id), pid=process.pid, port=request.port)
        return Started(self.endpoint(new_state), new_state)

    async def stop(self, instance_id: uuid.UUID, state: dict[str, Any], timeout: float) -> None:
        pid = self._live_pid(instance_id, state)
        if pid is not None:
            procfs.signal_session(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and procfs.session_alive(pid):
                await asyncio.sleep(0.1)
            if procfs.session_alive(pid):
                # With an unreachable Telegram API the gateway ignores SIGTERM for minutes (measured).
                log.warning("gateway ignored SIGTERM; killing it", instance_id=str(instance_id), pid=pid)
                procfs.signal_session(pid, signal.SIGKILL)
                while procfs.session_alive(pid):
                    await asyncio.sleep(0.05)
        await self._sweep(instance_id)
        port = state.get("port")
        deadline = time.monotonic() + 5
        while port and not can_bind(port) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the kernel may hold the listening socket a moment longer

    async def status(self, instance_id: uuid.UUID, state: dict[str, Any]) -> Observed:
        if self._live_pid(instance_id, state) is not None:
            return Observed(GatewayState.UP, f"pid {state['pid']}")
        if self.instance_dir(instance_id).exists():
            return Observed(GatewayState.DOWN)
        return Observed(GatewayState.GONE)

    async def list_all(self) -> list[Listed]:
        self.keep_logs()  # the reconciler's first look: gateways adopted from an earlier run
        found = []
        for directory, pids in procfs.processes_by_directory(self.instances_dir).items():
            try:
                instance_id = uuid.UUID(directory.name)
            except ValueError:
                continue
            # The gateway starts helpers, some in sessions of their own (its spawn broker), and
            # they can outlive it by a moment: only a process running the gateway itself counts.
            pid = procfs.eldest([pid for pid in pids if is_gateway_command(procfs.command(pid))])
            if pid is not None:
                found.append(Listed(instance_id, Observed(GatewayState.UP, f"pid {pid}"), {
                    "version": STATE_VERSION, "pid": pid, "started_at": procfs.start_time(pid),
                    "port": state_port(directory),
                }))
        return found

    async def sample(self, instance_id: uuid.UUID, state: dict[str, Any]) -> ResourceUse | None:
        """The gateway and every helper it runs in its instance directory, from /proc (a walk
        over every process: off the event loop)."""
        return await asyncio.to_thread(self._sample, instance_id, state)

    def _sample(self, instance_id: uuid.UUID, state: dict[str, Any]) -> ResourceUse | None:
        if self._live_pid(instance_id, state) is None:
            return None
        pids = procfs.processes_by_directory(self.instances_dir).get(self.instance_dir(instance_id), [])
        return ResourceUse(memory_bytes=sum(procfs.resident_bytes(pid) for pid in pids),
                           cpu_seconds=sum(procfs.cpu_seconds(pid) for pid in pids))

    def endpoint(self, state: dict[str, Any]) -> str:
        return f"http://127.0.0.1:{state['port']}"

    def matches(self, found: dict[str, Any], state: dict[str, Any]) -> bool:
        return (found.get("pid"), found.get("started_at")) == (state.get("pid"), state.get("started_at"))

    async def logs(self, instance_id: uuid.UUID, state: dict[str, Any], tail: int,
                   follow: bool) -> AsyncIterator[str]:
        path = self.gateway_log(instance_id)
        lines, position = await tail_lines(path, tail)
        for line in lines:
            yield line
        if follow:
            async with contextlib.aclosing(follow_lines(path, position)) as new_lines:
                async for line in new_lines:
                    yield line

    async def exec(self, instance_id: uuid.UUID, state: dict[str, Any], argv: list[str]) -> ExecResult:
        process = await asyncio.create_subprocess_exec(
            *self.install.argv(*argv),
            cwd=self.instance_dir(instance_id),
            env=self._own_env(instance_id) | placement_env(placement(self.instance_dir(instance_id))),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        return ExecResult(process.returncode or 0, output.decode(errors="replace"))

    async def approve_pairing(self, instance_id: uuid.UUID, state: dict[str, Any], code: str) -> int | None:
        place = placement(self.instance_dir(instance_id))
        sender = sender_of(await asyncio.to_thread(read_request, place.state_dir / STATE_DB, code), datetime.now(UTC))
        if sender is not None:
            config = json.loads(await asyncio.to_thread(place.config_path.read_text))
            self.write_config(with_owner(config, sender), place.config_path)
        return sender

    async def remove(self, instance_id: uuid.UUID, state: dict[str, Any], keep_data: bool) -> None:
        await self.stop(instance_id, state, timeout=10)
        home = self.instance_dir(instance_id)
        if not home.exists():
            return
        await asyncio.to_thread(shutil.rmtree, placement(home).secrets_dir, ignore_errors=True)  # kept data has none
        if keep_data:
            private_dir(self.deleted_dir)
            home.rename(self.deleted_dir / f"{instance_id}-{int(time.time())}")
        else:
            await asyncio.to_thread(shutil.rmtree, home)

    async def discard_kept_data(self, instance_id: uuid.UUID) -> None:
        if self.deleted_dir.is_dir():
            for kept in self.deleted_dir.glob(f"{instance_id}-*"):
                await asyncio.to_thread(shutil.rmtree, kept, ignore_errors=True)

    # -- instance backups -----------------------------------------------------------------
    async def archive_state(self, instance_id: uuid.UUID, state: dict[str, Any]) -> AsyncIterator[bytes]:
        work = private_dir(private_dir(self.instance_dir(instance_id) / BACKUPS_SUBDIR) / archives.scratch_name())
        try:
            archive = work / archives.ARCHIVE_NAME
            made = await self.exec(instance_id, state, archives.create_argv(str(archive)))
            archives.check("backup create", made.exit_code, made.output)
            with open(archive, "rb") as file:  # noqa: ASYNC230 (each read runs in a thread)
                while chunk := await asyncio.to_thread(file.read, READ_BYTES):
                    yield chunk
        finally:
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    async def unpack_state(self, instance_id: uuid.UUID, state: dict[str, Any], archive: AsyncIterator[bytes],
                           size: int) -> None:
        home = self.make_layout(instance_id)
        work = private_dir(home / BACKUPS_SUBDIR / archives.scratch_name())
        try:
            path, target = work / archives.ARCHIVE_NAME, work / "restored"
            with open(path, "wb") as file:  # noqa: ASYNC230 (each write runs in a thread)
                async for chunk in archive:
                    await asyncio.to_thread(file.write, chunk)
            restored = await self.exec(instance_id, state, archives.restore_argv(str(path), str(target)))
            archives.check("backup restore", restored.exit_code, restored.output)
            manifest = archives.parse_manifest((target / archives.manifest_name(os.listdir(target))).read_text())
            new_state = target / archives.state_asset(manifest)
            previous = home / PREVIOUS_STATE
            await asyncio.to_thread(shutil.rmtree, previous, ignore_errors=True)  # an older restore's, settled
            if (home / "state").exists():
                (home / "state").rename(previous)
            new_state.rename(home / "state")
        finally:
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    async def settle_state(self, instance_id: uuid.UUID, state: dict[str, Any], keep_restored: bool) -> None:
        home = self.instance_dir(instance_id)
        previous = home / PREVIOUS_STATE
        if not previous.exists():
            return
        if not keep_restored:
            await asyncio.to_thread(shutil.rmtree, home / "state", ignore_errors=True)
            previous.rename(home / "state")
        else:
            await asyncio.to_thread(shutil.rmtree, previous, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any], path: Path) -> None:
        """Write the instance's openclaw.json (a hook: tests break it to make starts fail)."""
        write_config(config, path)

    async def _sweep(self, instance_id: uuid.UUID) -> None:
        """Helpers the gateway started in sessions of their own normally exit with it; any left
        in the instance's directory after a grace second are killed."""
        home = self.instance_dir(instance_id)
        for _ in range(10):
            if not procfs.processes_by_directory(self.instances_dir).get(home):
                return
            await asyncio.sleep(0.1)
        for pid in procfs.processes_by_directory(self.instances_dir).get(home, []):
            log.warning("killing a gateway helper left behind", instance_id=str(instance_id), pid=pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _live_pid(self, instance_id: uuid.UUID, state: dict[str, Any]) -> int | None:
        """The recorded pid if it is still this instance's gateway (not a recycled pid)."""
        pid = state.get("pid")
        if not pid or not procfs.is_alive(pid):
            return None
        if procfs.start_time(pid) != state.get("started_at"):
            return None
        if procfs.cwd(pid) != self.instance_dir(instance_id):
            return None
        return pid


PROXY_ADDRESS = "127.0.0.1"  # the platform's proxy reaches a process gateway over loopback

def placement(instance_dir: Path) -> Placement:
    """Where a gateway of this runtime lives: on the host's loopback, its state, config and logs
    in its instance dir."""
    return Placement(bind="loopback", state_dir=instance_dir / "state", config_path=instance_dir / "openclaw.json",
                     log_file=instance_dir / "logs" / "openclaw.log", secrets_dir=instance_dir / "secrets",
                     heap_mb=LEAN_HEAP_MB, proxy_address=PROXY_ADDRESS)


# The titles `openclaw gateway run` gives itself: "openclaw" while it loads, then
# "openclaw-gateway" (OpenClaw 2026.9; the crash tests catch a change).
GATEWAY_TITLES = ("openclaw", "openclaw-gateway")


def is_gateway_command(argv: list[str]) -> bool:
    """The gateway itself, as spawned or retitled; not one of the helpers it starts."""
    return argv[-2:] == ["gateway", "run"] or (len(argv) == 1 and argv[0] in GATEWAY_TITLES)


def state_port(instance_dir: Path) -> int | None:
    """The port in an instance's config (for gateways found without a row)."""
    try:
        return json.loads(placement(instance_dir).config_path.read_text())["gateway"]["port"]
    except (OSError, ValueError, KeyError):
        return None
