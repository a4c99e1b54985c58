"""`clawfleet serve` as a child process, for tests that stop or kill the platform itself; and
what /proc says about the gateways it left behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp

from provisioner.runtimes import procfs
from provisioner.runtimes.process import is_gateway_command
from tests.support.api_client import Api


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RemoteApi(Api):
    """The REST client of tests/api_client.py, pointed at a platform in another process."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        super().__init__(None, http)  # type: ignore[arg-type]  # no in-process server
        self.base_url = base_url

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


class PlatformProcess:
    """One platform process at a time over the same data directory and database; each run
    writes its own log file (platform-1.log, platform-2.log, ...)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("CLAWFLEET_")}
        self.env |= env | {"CLAWFLEET_HTTP_HOST": "127.0.0.1", "CLAWFLEET_HTTP_PORT": str(self.port)}
        self.workdir = workdir
        self.runs = 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"platform-{self.runs}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, **extra_env: str) -> None:
        """Start `clawfleet serve` and wait until /healthz answers."""
        self.runs += 1
        with open(self.log_path, "ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "clawfleet.cli", "serve",
                cwd=self.workdir, env=self.env | extra_env,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if self.process.returncode is not None:
                    raise AssertionError(f"the platform exited at start:\n{self.log_text()[-4000:]}")
                try:
                    async with http.get(f"{self.base_url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the platform did not answer within 60 s:\n{self.log_text()[-4000:]}")

    async def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def gateways(instances_dir: Path) -> dict[uuid.UUID, list[int]]:
    """Gateway processes (not their helpers) by instance, straight from /proc."""
    found: dict[uuid.UUID, list[int]] = {}
    for directory, pids in procfs.processes_by_directory(instances_dir.resolve()).items():
        own = sorted(pid for pid in pids if is_gateway_command(procfs.command(pid)))
        if own:
            found[uuid.UUID(directory.name)] = own
    return found


def listening_ports(instances_dir: Path) -> set[int]:
    """TCP ports listened on by any process working in an instance directory."""
    inodes: set[str] = set()
    for pids in procfs.processes_by_directory(instances_dir.resolve()).values():
        for pid in pids:
            inodes |= {match.group(1) for link in _fd_links(pid) if (match := re.fullmatch(r"socket:\[(\d+)\]", link))}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _fd_links(pid: int) -> list[str]:
    """What the process's open descriptors point at; one closed during the scan is skipped, not
    the whole process (a busy gateway opens and closes files all the time)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []  # exited meanwhile
    links = []
    for fd in fds:
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return links


def kill_all(instances_dir: Path) -> None:
    """Whatever a failed test left running in the instances' directories."""
    for pids in procfs.processes_by_directory(instances_dir.resolve()).values():
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
