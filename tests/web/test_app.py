"""The aiohttp app, served for real on loopback: in process, and as `clawfleet serve`."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from clawfleet import __version__
from clawfleet.platform import build_app
from clawfleet.settings import Settings


def _settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **overrides)


@pytest.fixture
async def client_for():
    clients: list[TestClient] = []

    async def start(settings: Settings) -> TestClient:
        client = TestClient(TestServer(await build_app(settings), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def test_healthz_reports_version_and_database(client_for, database_url, engine, tmp_path) -> None:
    client = await client_for(_settings(tmp_path, database_url=database_url))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "version": __version__, "database": "ok"}


async def test_healthz_says_when_the_database_is_unreachable(client_for, tmp_path) -> None:
    settings = _settings(tmp_path, database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none")
    client = await client_for(settings)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["database"] == "unreachable"


async def test_errors_are_json(client_for, tmp_path) -> None:
    client = await client_for(_settings(tmp_path))
    response = await client.get("/api/no/such/route")
    assert response.status == 404
    assert await response.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    page = await client.get("/no/such/page")  # outside the API, a person reads it: a page
    assert page.status == 404 and page.content_type == "text/html"
    response = await client.post("/healthz")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_clawfleet_serve_migrates_answers_and_stops_on_sigterm(tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path / "data"), "CLAWFLEET_HTTP_PORT": str(port)}
    env.pop("CLAWFLEET_DATABASE_URL", None)
    env.pop("CLAWFLEET_SECRET_KEYS", None)
    process = subprocess.Popen([sys.executable, "-m", "clawfleet.cli", "serve"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = await _wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
        assert body == {"status": "ok", "version": __version__, "database": "ok"}
        assert (tmp_path / "data" / "clawfleet.db").exists()
        assert (tmp_path / "data" / "secret.keys").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "generated a secret key" in output
    assert "Traceback" not in output


async def _wait_for_health(url: str, process: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early: {process.stdout.read()}")
            try:
                async with session.get(url) as response:
                    return await response.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
    raise AssertionError("serve never answered /healthz")
