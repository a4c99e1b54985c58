"""Log followers end with their clients, on a real server started as `clawfleet serve` serves
(the aiohttp test server cancels handlers on its own and would hide a leak), over the process
runtime's real log files."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

from clawfleet.platform import PLATFORM, build_app
from clawfleet.server import SERVER_OPTIONS
from provisioner.openclaw.install import OpenClawInstall
from provisioner.runtimes.logfiles import open_log
from provisioner.runtimes.process import ProcessRuntime
from tests.support.memory_runtime import MemoryRuntime
from tests.support.platform_process import RemoteApi

FOLLOWERS = 20
SERVER_TASKS = ("RequestHandler.start", "EventSourceResponse._ping")  # one connection's, one stream's


class LogFileRuntime(MemoryRuntime):
    """In-memory gateways whose logs are read the process runtime's way, from its log files;
    counts the log readers still open."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        install = OpenClawInstall(root=data_dir, version="0", node=Path("/bin/false"), package_dir=data_dir)
        self.files = ProcessRuntime(data_dir, install)
        self.reading = 0

    async def logs(self, instance_id: uuid.UUID, state: dict, tail: int, follow: bool):
        self.reading += 1
        try:
            async for line in self.files.logs(instance_id, state, tail, follow):
                yield line
        finally:
            self.reading -= 1


def _server_tasks(ignoring: set[asyncio.Task] = frozenset()) -> set[asyncio.Task]:
    return {task for task in asyncio.all_tasks()
            if not task.done() and task.get_coro().__qualname__ in SERVER_TASKS} - ignoring


async def _follow(port: int, token: str, instance_id: str, sse: bool) -> asyncio.StreamWriter:
    """A follower that has its first line, on a connection of its own (dropped by the caller)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    accept = "text/event-stream" if sse else "text/plain"
    writer.write(f"GET /api/instances/{instance_id}/logs?tail=5&follow=1 HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {token}\r\nAccept: {accept}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    await reader.readuntil(b"gateway ready")
    return writer


async def test_dropped_followers_end_at_once_and_log_no_error(settings_for, sessions, tmp_path, caplog) -> None:
    runtime = LogFileRuntime(tmp_path / "data")
    app = await build_app(settings_for(data_dir=tmp_path / "data"), runtime=runtime)
    runner = web.AppRunner(app, **SERVER_OPTIONS)  # what `clawfleet serve` passes web.run_app
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            api = RemoteApi(f"http://127.0.0.1:{port}", http)
            await api.sign_up()
            _, created = await api.call("POST", "/api/instances", {"model_provider": "openai",
                                                                   "api_key": "sk-proj-" + "a" * 30})
            assert (await api.progress(created["id"]))[-1]["done"]
        log_path = runtime.files.make_layout(uuid.UUID(created["id"])) / "logs" / "gateway.log"
        with open_log(log_path) as out:
            out.write(b"gateway ready\n")

        caplog.set_level(logging.ERROR)
        earlier = _server_tasks()  # connections of the calls above, if the server still holds them
        followers = [await _follow(port, api.token, created["id"], sse=n % 2 == 0) for n in range(FOLLOWERS)]
        assert runtime.reading == FOLLOWERS and len(_server_tasks(earlier)) >= FOLLOWERS
        for writer in followers:
            writer.transport.abort()  # the client goes, without a word

        for _ in range(50):  # a second at most: a guard against followers that never end
            if not runtime.reading and not _server_tasks(earlier):
                break
            await asyncio.sleep(0.02)
        assert (runtime.reading, _server_tasks(earlier)) == (0, set()), "followers outlived their clients"
        with open_log(log_path) as out:  # a follower left behind would now write to a dead client
            out.write(b"more lines\n" * 10)
        await asyncio.sleep(0.6)
        assert runtime.reading == 0 and _server_tasks(earlier) == set()
        assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
    finally:
        await app[PLATFORM].manager.wait_idle()
        await runner.cleanup()
        await runtime.close()
