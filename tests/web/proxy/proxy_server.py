"""The proxy served by a real aiohttp server whose one handler calls ReverseProxy.forward, for
one upstream, as a front end in front of one instance host would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from web.proxy import ProxyLimits, ReverseProxy, Upstream, client_session_options

CLIENT_ADDRESS = "203.0.113.7"
PUBLIC_HOST = "ada.instances.example"


def proxy_app(proxy: ReverseProxy, upstream: Upstream) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await proxy.forward(request, upstream, client_address=CLIENT_ADDRESS, public_scheme="https",
                                   public_host=PUBLIC_HOST)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@asynccontextmanager
async def serving_proxy(upstream: Upstream, limits: ProxyLimits = ProxyLimits(), *,
                        handler_cancellation: bool = True) -> AsyncIterator[tuple[str, ReverseProxy]]:
    """(the proxy's base URL, the proxy). `handler_cancellation` as the platform serves
    (clawfleet/server.py); off, as aiohttp's own default."""
    async with aiohttp.ClientSession(**client_session_options(limits)) as http:
        proxy = ReverseProxy(http, limits)
        runner = web.AppRunner(proxy_app(proxy, upstream), handler_cancellation=handler_cancellation, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}", proxy
        finally:
            await runner.cleanup()
