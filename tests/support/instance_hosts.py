"""Browsers without a browser for instance hosts: `*.localhost` resolved to loopback as real
browsers do (or another domain to the address a test serves it on), so the dashboard
(`localhost:<port>`) and each instance host keep their own cookies in one jar, exactly as a
browser keeps them."""

from __future__ import annotations

import socket
import ssl as ssl_module
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from playwright.async_api import Page
from sqlalchemy import select

from clawfleet.settings import Settings
from db.models import Instance, User
from provisioner.openclaw.config import OWNER_HEADER, OWNER_SCOPES
from tests.support.api_client import Api, running_api
from tests.support.control_ui import call, control_ui
from tests.support.memory_runtime import MemoryRuntime
from tests.support.platform_process import free_port
from tests.support.web_client import PASSWORD


class NamesAt(AbstractResolver):
    """`domain` and every name under it is `address`; nothing else resolves."""

    def __init__(self, domain: str = "localhost", address: str = "127.0.0.1") -> None:
        self.domain, self.address = domain, address  # localhost: RFC 6761's loopback names

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        if host != self.domain and not host.endswith(f".{self.domain}"):
            raise OSError(f"{host} is not under {self.domain}")
        return [ResolveResult(hostname=host, host=self.address, port=port, family=socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


def browser_session(names: NamesAt | None = None, ssl: ssl_module.SSLContext | None = None) -> aiohttp.ClientSession:
    """`ssl`: the certificate authorities an HTTPS edge's certificates are checked against."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=names or NamesAt(), ssl=ssl or True),
                                 cookie_jar=aiohttp.CookieJar())


def csrf_of(text: str) -> str:
    return text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


class HostBrowser:
    """One person's browser, without a browser: the dashboard and instance hosts, each with its
    own cookies, as a browser keeps them."""

    def __init__(self, dashboard: str, names: NamesAt | None = None, ssl: ssl_module.SSLContext | None = None) -> None:
        self.dashboard = dashboard
        self.http = browser_session(names, ssl)

    async def sign_up(self, email: str) -> None:
        await self._submit("/signup", email)

    async def sign_in(self, email: str) -> None:
        await self._submit("/login", email)

    async def _submit(self, path: str, email: str) -> None:
        """The dashboard's own form, as a person fills it in: on to the dashboard's pages, signed in."""
        async with self.http.get(f"{self.dashboard}{path}") as page:
            csrf = csrf_of(await page.text())
        async with self.http.post(f"{self.dashboard}{path}", data={"email": email, "password": PASSWORD,
                                                                     "csrf_token": csrf},
                                  headers={"Origin": self.dashboard}) as response:
            assert response.status == 200 and response.url.path != path, await response.text()  # not the form again

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


async def owned_instance(api: Api, email: str, api_key: str) -> Instance:
    """A running instance of the user signed up as `email`, created as the API creates one; the
    API client now holds that user's token."""
    async with api.platform.sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
    instance = await api.platform.instances.create(user, model_provider="openai", api_key=api_key)
    api.token = (await api.platform.accounts.start_session(user)).token
    await api.wait_status(str(instance.id), "running", timeout=200)
    return await api.platform.instances.get(user, instance.id)


async def sign_in_page(page: Page, dashboard: str, email: str) -> None:
    """A real browser's page signs in on the dashboard's own login page."""
    await page.goto(f"{dashboard}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{dashboard}/dashboard")


async def assert_lands_signed_in(owner: HostBrowser, host: str) -> None:
    """The owner's browser, at its instance's host, gets the Control UI, and its socket is signed
    in as the owner with the owner's scopes whatever forged headers it sends, admin refused."""
    status, landed, text, _ = await owner.get(f"{host}/")
    assert status == 200 and landed == f"{host}/" and "<title>OpenClaw Control</title>" in text
    forged = {OWNER_HEADER: "someone-else", "X-Forwarded-For": "127.0.0.1", "x-openclaw-scopes": "operator.admin"}
    async with control_ui(owner.http, host.replace("http", "ws", 1) + "/", forged, host) as (ws, answer):
        assert answer["ok"], answer  # the forged headers were overwritten: signed in as the owner
        auth = answer["payload"]["auth"]
        assert auth["method"] == "trusted-proxy" and sorted(auth["scopes"]) == sorted(OWNER_SCOPES)
        assert (await call(ws, "health", {}))["ok"]
        refused = await call(ws, "config.set", {"raw": "{}"})  # the platform's config is not the owner's to rewrite
        assert refused["error"]["details"]["missingScope"] == "operator.admin"
