"""Browsers without a browser for instance hosts: `*.localhost` resolved to loopback as real
browsers do, so the dashboard (`localhost:<port>`) and each instance host keep their own
cookies in one jar, exactly as a browser keeps them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from clawfleet.settings import Settings
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.platform_process import free_port
from tests.support.web_client import PASSWORD


class LoopbackNames(AbstractResolver):
    """`localhost` and every `*.localhost` name is 127.0.0.1 (RFC 6761); nothing else resolves."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        if host != "localhost" and not host.endswith(".localhost"):
            raise OSError(f"{host} is not a loopback name")
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


def browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=LoopbackNames()),
                                 cookie_jar=aiohttp.CookieJar())


def csrf_of(text: str) -> str:
    return text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


class HostBrowser:
    """One person's browser, without a browser: the dashboard and instance hosts, each with its
    own cookies, as a browser keeps them."""

    def __init__(self, dashboard: str) -> None:
        self.dashboard = dashboard
        self.http = browser_session()

    async def sign_up(self, email: str) -> None:
        async with self.http.get(f"{self.dashboard}/signup") as page:
            csrf = csrf_of(await page.text())
        async with self.http.post(f"{self.dashboard}/signup", data={"email": email, "password": PASSWORD,
                                                                      "csrf_token": csrf},
                                  headers={"Origin": self.dashboard}) as response:
            assert response.status == 200, await response.text()

    async def get(self, url: str, **kwargs) -> tuple[int, str, str, object]:
        """(status, the URL it ended at, the text, the headers)."""
        async with self.http.get(url, **kwargs) as response:
            return response.status, str(response.url), await response.text(), response.headers

    async def close(self) -> None:
        await self.http.close()


@asynccontextmanager
async def site_on_localhost(settings_for, runtime=None, **overrides) -> AsyncIterator[tuple[Api, str]]:
    """The platform at http://localhost:<port> with instances at http://<sub>.localhost:<port>,
    over in-memory gateways unless given a runtime; (api, dashboard URL)."""
    port = free_port()
    public_url = f"http://localhost:{port}"
    runtime = runtime or MemoryRuntime()
    settings: Settings = settings_for(public_url=public_url, instance_domain="localhost", **overrides)
    try:
        async with running_api(settings, runtime, port=port) as api:
            yield api, public_url
    finally:
        await runtime.close()
