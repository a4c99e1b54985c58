"""An aiohttp app served on a free loopback port: the fake's own server, and the small
endpoints its tests stand up (a webhook receiver, a success page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from tests.fakes.stripe.protocol import LOOPBACK


class LoopbackServer:
    """Serves `app()` on 127.0.0.1 from `start()` (or `async with`) until `close()`."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started: use `async with` or `await start()`")
        return f"http://{LOOPBACK}:{self._port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self):  # noqa: ANN201 - returns the subclass itself
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, 0).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self):  # noqa: ANN204 - the subclass itself
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _AppServer(LoopbackServer):
    def __init__(self, app: web.Application) -> None:
        super().__init__()
        self._app = app

    def app(self) -> web.Application:
        return self._app


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` on a free loopback port while the block runs; yields its base URL."""
    async with _AppServer(app) as server:
        yield server.url
