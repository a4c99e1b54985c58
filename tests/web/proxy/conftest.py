"""The proxy (proxy_server.py) in front of the fake gateway (fake_gateway.py), and a client that
takes bytes as they come."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.web.proxy.fake_gateway import Seen, started
from tests.web.proxy.proxy_server import PUBLIC_HOST, serving_proxy
from web.proxy import ProxyLimits, ReverseProxy, Upstream

PUBLIC_ORIGIN = f"https://{PUBLIC_HOST}"
KEY = "instance-1"
PROXY_PACKAGE = str(Path(__file__).resolve().parents[3] / "web" / "proxy")


@dataclass
class Proxied:
    url: str  # the proxy's own base URL
    proxy: ReverseProxy
    client: aiohttp.ClientSession

    def at(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def gateway(seen: Seen) -> AsyncIterator[TestServer]:
    server = await started(seen)
    yield server
    await server.close()


def gateway_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def proxied(gateway: TestServer) -> Callable[..., AsyncIterator[Proxied]]:
    @asynccontextmanager
    async def serve(limits: ProxyLimits = ProxyLimits(), base_url: str | None = None, *,
                    handler_cancellation: bool = True, **upstream_fields) -> AsyncIterator[Proxied]:
        upstream = Upstream(base_url or gateway_url(gateway), KEY, **upstream_fields)
        async with serving_proxy(upstream, limits, handler_cancellation=handler_cancellation) as (url, proxy):
            # the browser's side: no decompression, no cookies kept, no redirects followed
            async with aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()) as client:
                yield Proxied(url, proxy, client)
    return serve


def proxy_tasks() -> list[asyncio.Task]:
    """Tasks still running code of the proxy package."""
    return [task for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "cr_code", None) and task.get_coro().cr_code.co_filename.startswith(PROXY_PACKAGE)]


async def settled(p: Proxied) -> None:
    """The proxy's side of a finished exchange winds down at once: no count, no task left behind."""
    for _ in range(100):
        if p.proxy.open_count(KEY) == 0 and not proxy_tasks():
            return
        await asyncio.sleep(0.01)
    assert p.proxy.open_count(KEY) == 0 and proxy_tasks() == []


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
