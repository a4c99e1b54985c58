"""Each user's own URL, end to end, with a real OpenClaw gateway (process runtime) behind the
platform's reverse proxy: the owner opens it from the dashboard and lands in their Control UI
signed in, with no token and no pairing prompt, in a real browser too; nobody else gets in,
through the proxy or around it. The Bot API and the model are loopback fakes.

One platform and one gateway serve the module (a gateway takes 15-60 s to start)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from playwright.async_api import Browser

from clawfleet.settings import Settings
from provisioner.openclaw.config import OWNER_HEADER
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram
from tests.support.api_client import Api, migrated, running_api
from tests.support.browser import assert_accessible, open_page, screenshot
from tests.support.control_ui import control_ui, frame_of
from tests.support.instance_hosts import HostBrowser, assert_lands_signed_in, owned_instance, sign_in_page
from tests.support.platform_process import free_port, kill_all

OPENAI_KEY = "sk-proj-instanceHOST0123456789abcd"
UNKNOWN = "claw-0000000000"


@dataclass
class Site:
    api: Api
    dashboard: str
    host: str  # the instance's own URL
    subdomain: str
    endpoint: str  # the gateway's own address, around the proxy
    owner_id: str
    ada: HostBrowser  # signed in on the dashboard
    bob: HostBrowser  # another signed-in user


@pytest.fixture(scope="module")
async def site(tmp_path_factory, openclaw_install) -> AsyncIterator[Site]:
    root = tmp_path_factory.mktemp("instance-host")
    port = free_port()
    dashboard = f"http://localhost:{port}"
    async with FakeTelegram() as telegram, FakeModel() as model:
        settings = Settings(
            _env_file=None, data_dir=root / "data", database_url=f"sqlite+aiosqlite:///{root / 'cf.db'}",
            runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
            telegram_api_url=telegram.api_url, provider_urls={"openai": f"{model.url}/v1"},
            public_url=dashboard, instance_domain="localhost", start_timeout_s=150,
        )
        await migrated(settings)
        try:
            async with running_api(settings, port=port) as api:
                ada, bob = HostBrowser(dashboard), HostBrowser(dashboard)
                try:
                    await ada.sign_up("ada@example.com")
                    await bob.sign_up("bob@example.com")
                    instance = await owned_instance(api, "ada@example.com", OPENAI_KEY)
                    yield Site(api, dashboard, api.platform.instances.urls.url(instance.subdomain), instance.subdomain,
                               instance.endpoint_url, str(instance.user_id), ada, bob)
                finally:
                    await ada.close()
                    await bob.close()
        finally:  # process gateways outlive their platform by design: a test's must not
            kill_all(settings.data_dir / "instances")


def _ws(url: str) -> str:
    return url.replace("http://", "ws://", 1) + "/"


async def test_the_owner_lands_in_the_control_ui_and_its_websocket_connects_signed_in(site: Site) -> None:
    await assert_lands_signed_in(site.ada, site.host)


async def test_another_user_and_anyone_signed_out_get_what_an_unknown_host_gets(site: Site) -> None:
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for who in (site.bob, HostBrowser(site.dashboard)):
        answers = []
        for subdomain in (site.subdomain, UNKNOWN):
            host = site.api.platform.instances.urls.url(subdomain)
            page = await who.get(f"{host}/")
            status, _, _, headers = await who.get(f"{host}/", headers=upgrade, allow_redirects=False)
            answers.append((page[0], page[2].replace(subdomain, "SUB"), status,
                            headers["Location"].replace(subdomain, "SUB")))
        assert answers[0] == answers[1]
        assert answers[0][0] == (404 if who is site.bob else 200)  # bob: the 404; signed out: the login page
        assert answers[0][2] == 303 and answers[0][3] == f"{site.dashboard}/open/SUB"
        if who is not site.bob:
            await who.close()


async def test_the_gateway_refuses_the_owner_around_the_proxy(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        async with control_ui(http, _ws(site.endpoint), {}, site.host) as (_, answer):
            assert not answer["ok"]  # no proxy vouching: its own auth says no
        async with control_ui(http, _ws(site.endpoint), {OWNER_HEADER: site.owner_id}, site.host) as (_, answer):
            assert not answer["ok"]  # nor does naming the owner oneself help


async def test_in_a_real_browser_the_dashboard_opens_the_control_ui_with_no_prompt(site: Site, browser: Browser
                                                                                  ) -> None:
    page = await open_page(browser, "desktop")
    frames: list[dict] = []

    def watch(ws) -> None:
        ws.on("framereceived", lambda payload: frames.append(frame_of(payload)))

    page.on("websocket", watch)
    try:
        await _signed_in(page, site)
        await page.goto(f"{site.dashboard}/open/{site.subdomain}")
        await page.wait_for_url(f"{site.host}/**")
        for _ in range(600):
            hello = [f for f in frames if f.get("type") == "res" and (f.get("payload") or {}).get("auth")]
            answered = [f for f in frames if f.get("type") == "res" and f.get("ok") and f not in hello]
            if hello and answered:
                break
            await asyncio.sleep(0.1)
        assert hello and hello[0]["ok"] and hello[0]["payload"]["auth"]["method"] == "trusted-proxy", frames[:5]
        assert answered, "the Control UI's requests got no answer over its socket"
        await page.get_by_text("Connected").first.wait_for(timeout=60_000)  # the UI's own word for its socket
        text = (await page.evaluate("() => document.body.innerText")).lower()
        assert "pairing required" not in text and "gateway token" not in text  # the UI's prompts, never shown
        await screenshot(page, "instance-control-ui")
    finally:
        await page.context.close()


async def _signed_in(page, site: Site) -> None:
    await sign_in_page(page, site.dashboard, "ada@example.com")


async def test_a_stopped_instance_shows_its_owner_a_start_button_that_brings_the_control_ui_back(
        site: Site, browser: Browser) -> None:
    user = await site.api.platform.accounts.user_by_id(uuid.UUID(site.owner_id))
    instance = await site.api.platform.instances.at_subdomain(site.subdomain)
    await site.api.platform.instances.stop(user, instance.id)
    await site.api.wait_status(str(instance.id), "stopped", timeout=60)
    for kind in ("phone", "desktop"):  # the desktop one starts it: last
        page = await open_page(browser, kind)
        try:
            await _signed_in(page, site)
            await page.goto(f"{site.host}/")  # the address itself: through the dashboard's door and back
            await page.get_by_role("heading", name="Your assistant is stopped").wait_for()
            await screenshot(page, "instance-host-stopped")
            await assert_accessible(page)
            if kind == "phone":
                continue
            await page.get_by_role("button", name="Start it").click()
            await page.get_by_text("Connected").first.wait_for(timeout=180_000)  # it reloads itself until then
            assert page.url.startswith(f"{site.host}/")
        finally:
            await page.context.close()
