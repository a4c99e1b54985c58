"""A running ClawFleet web app on loopback, and a small client for its REST API."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from clawfleet.platform import PLATFORM, Platform, build_app
from clawfleet.settings import Settings
from provisioner.notify import Notifier
from provisioner.runtimes.base import Runtime


class Api:
    def __init__(self, server: TestServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.token: str | None = None

    @property
    def platform(self) -> Platform:
        return self.server.app[PLATFORM]

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                   token: str | None = None) -> tuple[int, Any]:
        headers = {}
        if (token or self.token) is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.request(method, self.url(path), data=data, headers=headers) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text and response.content_type == "application/json" else text)

    async def sign_up(self, email: str | None = None) -> str:
        status, body = await self.call("POST", "/api/auth/register",
                                       {"email": email or f"{uuid.uuid4().hex[:8]}@example.com",
                                        "password": "correct horse battery"})
        assert status == 201, body
        self.token = body["token"]
        return body["token"]

    async def progress(self, instance_id: str, timeout: float = 180) -> list[dict]:
        """The SSE progress stream of the instance's latest action, read to its end."""
        return [event for _, event in await self.progress_with_ids(instance_id, timeout)]

    async def progress_with_ids(self, instance_id: str, timeout: float = 180, *,
                                last_event_id: str | None = None) -> list[tuple[str, dict]]:
        """The same stream as (SSE id, event) pairs; `last_event_id` resumes as a reconnect does."""
        events = []
        async with asyncio.timeout(timeout):
            async for pair in self.progress_stream(instance_id, last_event_id=last_event_id):
                events.append(pair)
        return events

    async def progress_stream(self, instance_id: str, *,
                              last_event_id: str | None = None) -> AsyncIterator[tuple[str, dict]]:
        """The stream's (SSE id, event) pairs as they arrive, for a test that acts mid-stream."""
        event_id = ""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        async with self.http.get(self.url(f"/api/instances/{instance_id}/progress"), headers=headers) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/event-stream"
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    yield event_id, json.loads(line[5:].strip())

    async def wait_status(self, instance_id: str, wanted: str, timeout: float = 180) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                status, body = await self.call("GET", f"/api/instances/{instance_id}")
                if status == 200 and body["status"] == wanted:
                    return body
                await asyncio.sleep(0.2)


async def migrated(settings: Settings) -> None:
    """Bring the settings' database up to date, as `clawfleet serve` does before it starts."""
    from db.engine import create_engine
    from db.migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_api(settings: Settings, runtime: Runtime | None = None,
                      notifier: Notifier | None = None, *, port: int | None = None,
                      host: str = "127.0.0.1") -> AsyncIterator[Api]:
    app = await build_app(settings, runtime=runtime, notifier=notifier)
    server = TestServer(app, host=host, **({"port": port} if port else {}))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(server, http)
    finally:
        await close_platform(server)


async def close_platform(server: TestServer, wait_s: float = 60) -> None:
    """Let the platform's background actions finish (before the tables are emptied), then close
    it. Actions still running after `wait_s` are cancelled by the close, and fail the test."""
    unfinished = False
    try:
        async with asyncio.timeout(wait_s):
            await server.app[PLATFORM].manager.wait_idle()
    except TimeoutError:
        unfinished = True
    await server.close()
    if unfinished:
        raise AssertionError(f"background actions were still running {wait_s:.0f} s after the test")
