"""The whole path of an owner's request to their instance's host, for bench/proxy.py: the real
platform app (SQLite, served as the platform serves) routing by host, opening the host's cookie,
checking the dashboard session behind it, and proxying to the instance's gateway. The in-memory
runtime stands in for starting gateways: each instance is given the address of one already
running (the OpenClaw gateway for the GET, the echo server for the WebSocket)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from clawfleet.platform import PLATFORM, build_app
from clawfleet.settings import Settings
from provisioner.runtimes.base import LaunchRequest, Started
from tests.support.api_client import migrated
from tests.support.memory_runtime import MemoryRuntime
from tests.support.platform_process import RemoteApi, free_port
from web.instance_site.visitors import Visitor, cookie_name, sealed_visitor

EMAIL = "owner@example.com"
API_KEY = "sk-proj-benchINSTANCEhost0123456789"


class GivenGateways(MemoryRuntime):
    """Each start hands the instance the next of these gateways' addresses."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = list(urls)

    async def start(self, request: LaunchRequest, state: dict[str, Any]) -> Started:
        started = await super().start(request, state)
        given = {**started.state, "given": self.urls.pop(0)}
        return Started(self.endpoint(given), given)

    def endpoint(self, state: dict[str, Any]) -> str:
        return state.get("given") or super().endpoint(state)


async def _owner_of_each(base: str, platform, count: int) -> list[dict[str, str]]:
    """One user with `count` running instances; for each, the headers of its owner's browser
    at its host (Host and the host's cookie, as its sign-in sets it)."""
    async with aiohttp.ClientSession() as http:
        api = RemoteApi(base, http)
        token = await api.sign_up(EMAIL)
        created = []
        for _ in range(count):
            status, instance = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": API_KEY})
            if status != 202:
                raise RuntimeError(f"the platform refused the instance: {instance}")
            created.append(instance)
        for instance in created:
            await api.wait_status(instance["id"], "running", timeout=20)
    user = await platform.accounts.user_for_token(token)
    session = (await platform.accounts.start_session(user)).record
    owners = []
    for instance in created:
        row = await platform.instances.get(user, instance["id"])
        cookie = sealed_visitor(platform.instances.keyring, row.id, Visitor(user.id, session.id))
        owners.append({"Host": platform.instances.urls.host(row.subdomain), "Cookie": f"{cookie_name(False)}={cookie}"})
    async with aiohttp.ClientSession() as http:
        for headers in owners:  # the gateway's own answer, not a redirect to the dashboard's door
            async with http.get(f"{base}/readyz", headers=headers, allow_redirects=False) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"the instance host answered {answer.status}, not its gateway's 200")
    return owners


def serve_instance_hosts(gateway_urls: list[str], ready, stop) -> None:
    """In a process of its own: the platform, one instance per gateway; puts (base URL, the owner's
    headers for each instance's host) on `ready`, serves until `stop` is set."""
    async def main() -> None:
        workdir, port = Path(tempfile.mkdtemp(prefix="clawfleet-bench-hosts-")), free_port()
        settings = Settings(_env_file=None, data_dir=workdir / "data",
                            database_url=f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
                            public_url=f"http://localhost:{port}", instance_domain="localhost",
                            max_instances_per_user=len(gateway_urls), log_level="WARNING")
        await migrated(settings)
        app = await build_app(settings, runtime=GivenGateways(gateway_urls))
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)  # as clawfleet/server.py serves
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            base = f"http://127.0.0.1:{port}"
            ready.put((base, await _owner_of_each(base, app[PLATFORM], len(gateway_urls))))
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        finally:
            await runner.cleanup()
    asyncio.run(main())
