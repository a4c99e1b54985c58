"""Each user's own URL in the server's case: the docker runtime on the real engine (host-port
endpoint mode) and a browser on another machine, played by a network namespace behind a veth
pair, so the platform sees a non-loopback client and the gateway's trusted proxy is the
instance bridge's address. The owner lands in their Control UI signed in, with no token and no
pairing prompt; nobody else gets in, through the proxy or around it.

The gateway has no Telegram channel and its provider's baseUrl is the container's own loopback,
where nothing listens: nothing leaves the machine. One platform and one container serve the
module (a gateway takes 15-60 s to start)."""

from __future__ import annotations

import ipaddress
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiodocker
import aiohttp
import pytest
from playwright.async_api import Browser, async_playwright

from clawfleet.settings import Settings
from db.models import User
from provisioner.openclaw.config import OWNER_HEADER
from provisioner.runtimes.docker_spec import container_name, network_name
from tests.support.api_client import Api, migrated, running_api
from tests.support.browser import CHROMIUM, open_page, screenshot
from tests.support.control_ui import control_ui, frame_of
from tests.support.docker_fixtures import remove_everything_of
from tests.support.instance_hosts import HostBrowser, NamesAt, assert_lands_signed_in, owned_instance, sign_in_page
from tests.support.namespace_relay import Namespace, outside_world
from tests.support.platform_process import free_port
from tests.support.services import service_missing

DOMAIN = "clawfleet.test"  # RFC 6761: never a real name
OPENAI_KEY = "sk-proj-serverCASE0123456789abcdef"
NOWHERE = "http://127.0.0.1:9/v1"  # the container's own loopback: nothing leaves


@dataclass
class Site:
    api: Api
    dashboard: str
    host: str  # the instance's own URL
    subdomain: str
    instance_id: uuid.UUID
    owner_id: str
    docker: aiodocker.Docker
    elsewhere: Namespace  # where the browser is
    platform_address: str  # where the platform listens, as the browser reaches it
    ada: HostBrowser  # signed in on the dashboard, from the host's side of the veth
    bob: HostBrowser


@pytest.fixture(scope="module")
async def site(tmp_path_factory, docker_engine, openclaw_image) -> AsyncIterator[Site]:
    root = tmp_path_factory.mktemp("server-case")
    with outside_world("198.18.9") as elsewhere:
        address, port = "198.18.9.1", free_port()  # the veth's host end: not loopback
        dashboard = f"http://{DOMAIN}:{port}"
        settings = Settings(
            _env_file=None, data_dir=root / "data", database_url=f"sqlite+aiosqlite:///{root / 'cf.db'}",
            runtime="docker", docker_url=docker_engine, openclaw_image=openclaw_image,
            provider_urls={"openai": NOWHERE}, public_url=dashboard, instance_domain=DOMAIN, start_timeout_s=150,
        )
        await migrated(settings)
        async with aiodocker.Docker(url=docker_engine) as docker, \
                running_api(settings, port=port, host=address) as api:
            assert api.platform.runtime.name == "docker", api.platform.runtime.unavailable_reason
            names = NamesAt(DOMAIN, address)
            ada, bob = HostBrowser(dashboard, names), HostBrowser(dashboard, names)
            instance = None
            try:
                await ada.sign_up("ada@example.com")
                await bob.sign_up("bob@example.com")
                instance = await owned_instance(api, "ada@example.com", OPENAI_KEY)
                yield Site(api, dashboard, api.platform.instances.urls.url(instance.subdomain), instance.subdomain,
                           instance.id, str(instance.user_id), docker, elsewhere, address, ada, bob)
            finally:
                await ada.close()
                await bob.close()
                if instance is not None:
                    await remove_everything_of(docker, [instance.id])


def _ws(url: str) -> str:
    return url.replace("http://", "ws://", 1) + "/"


async def _gateway_config(site: Site) -> dict:
    state = (await site.api.platform.instances.get(await _ada(site), site.instance_id)).runtime_state
    result = await site.api.platform.runtime.exec(site.instance_id, state, ["config", "get", "gateway", "--json"])
    return json.loads(result.output[result.output.index("{"):])


async def test_the_gateway_trusts_only_the_bridge_address_the_platform_connects_from(site: Site) -> None:
    gateway = await _gateway_config(site)
    network = await (await site.docker.networks.get(network_name(site.instance_id))).show()
    subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
    assert gateway["trustedProxies"] == [f"{subnet.network_address + 1}/32"]  # the bridge's own address
    assert gateway["auth"]["mode"] == "trusted-proxy" and "allowLoopback" not in gateway["auth"]["trustedProxy"]
    assert gateway["controlUi"]["allowedOrigins"] == [site.host]


async def test_a_restart_makes_a_new_container_from_todays_config_and_the_owner_is_signed_in_again(
        site: Site) -> None:
    """What moves an instance made before owner sign-in to it: every start writes the config anew."""
    before = (await (await site.docker.containers.get(container_name(site.instance_id))).show())["Id"]
    status, _ = await site.api.call("POST", f"/api/instances/{site.instance_id}/restart")
    assert status == 202
    assert (await site.api.progress(str(site.instance_id), timeout=200))[-1]["done"]
    after = await (await site.docker.containers.get(container_name(site.instance_id))).show()
    assert after["Id"] != before and after["State"]["Running"]
    assert (await _gateway_config(site))["auth"]["mode"] == "trusted-proxy"
    async with control_ui(site.ada.http, _ws(site.host), {}, site.host) as (ws, answer):
        assert answer["ok"] and answer["payload"]["auth"]["method"] == "trusted-proxy", answer


async def test_the_owner_is_signed_in_over_http_and_the_websocket(site: Site) -> None:
    await assert_lands_signed_in(site.ada, site.host)
    async with site.bob.http.get(f"{site.host}/") as refused:
        assert refused.status == 404  # another user: what an unknown host gets (tests/e2e/test_instance_host.py)


async def test_the_gateway_refuses_the_owner_around_the_proxy(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {OWNER_HEADER: site.owner_id}):  # nor does naming the owner oneself help
            # The published port connects from the bridge's address, the trusted proxy's: a
            # request naming no client there is refused before any route (proxy_attribution_required).
            endpoint = (await site.api.platform.instances.get(await _ada(site), site.instance_id)).endpoint_url
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with control_ui(http, _ws(endpoint), headers, site.host):
                    pass
            assert refused.value.status == 403


@pytest.mark.browser
async def test_a_browser_elsewhere_lands_in_the_control_ui_with_no_prompt(site: Site, tmp_path: Path) -> None:
    async with _browser_in(site.elsewhere, site.platform_address, tmp_path) as browser:
        page = await open_page(browser, "desktop")
        frames: list[dict] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(frame_of(payload))))
        await sign_in_page(page, site.dashboard, "ada@example.com")
        await page.goto(f"{site.dashboard}/open/{site.subdomain}")
        await page.wait_for_url(f"{site.host}/**")
        await page.get_by_text("Connected").first.wait_for(timeout=60_000)  # the UI's own word for its socket
        hello = [f for f in frames if f.get("type") == "res" and (f.get("payload") or {}).get("auth")]
        assert hello and hello[0]["ok"] and hello[0]["payload"]["auth"]["method"] == "trusted-proxy", frames[:5]
        text = (await page.evaluate("() => document.body.innerText")).lower()
        assert "pairing required" not in text and "gateway token" not in text
        await screenshot(page, "instance-control-ui-server")
        await page.context.close()
    # The gateway knows the browser by its own address, which only the platform's proxy could tell it.
    state = (await site.api.platform.instances.get(await _ada(site), site.instance_id)).runtime_state
    result = await site.api.platform.runtime.exec(site.instance_id, state, ["devices", "list", "--json"])
    assert site.elsewhere.address in result.output, result.output[-2000:]


async def test_the_engine_samples_the_containers_memory_and_cpu(site: Site) -> None:
    """The engine's one-shot stats of the module's container, and of a container that is not there."""
    runtime = site.api.platform.runtime
    state = (await site.api.platform.instances.get(await _ada(site), site.instance_id)).runtime_state
    use = await runtime.sample(site.instance_id, state)
    assert use is not None and use.memory_bytes > 100 * 1024 * 1024 and use.cpu_seconds > 1
    assert await runtime.sample(uuid.uuid4(), {}) is None
    assert await site.api.platform.resource_sampler.run_once() == 1


async def _ada(site: Site) -> User:
    return await site.api.platform.accounts.user_by_id(uuid.UUID(site.owner_id))


@asynccontextmanager
async def _browser_in(namespace: Namespace, address: str, workdir: Path) -> AsyncIterator[Browser]:
    """Chromium started inside a network namespace (Playwright drives it over a pipe, which the
    namespace does not touch), the platform's names resolved to its address there."""
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"{CHROMIUM} is missing (make test installs it: scripts/ensure-chromium.sh)")
    wrapper = workdir / "chromium-elsewhere"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter --net=/var/run/netns/{namespace.name} -- {CHROMIUM} "$@"\n')
    os.chmod(wrapper, 0o755)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(wrapper), headless=True,
            args=[f"--host-resolver-rules=MAP {DOMAIN} {address}, MAP *.{DOMAIN} {address}"])
        try:
            yield browser
        finally:
            await browser.close()

