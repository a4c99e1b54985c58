"""`clawfleet serve`: one asyncio process runs the whole platform (clawfleet/platform.py)."""

from __future__ import annotations

import structlog
from aiohttp import web

from clawfleet import __version__
from clawfleet.platform import build_app
from clawfleet.settings import Settings
from db.engine import describe_url

log = structlog.get_logger("clawfleet")

# How the web app is served; tests that need a real server start theirs with the same options.
# handler_cancellation: a handler whose client went away is cancelled, so no request (a log
# follower, a progress stream) outlives its client.
SERVER_OPTIONS = {"access_log": None, "shutdown_timeout": 30, "handler_cancellation": True}


def serve(settings: Settings) -> None:
    log.info(
        "starting",
        version=__version__,
        listen=f"http://{settings.http_host}:{settings.http_port}",
        database=describe_url(settings.database_url),
        runtime=settings.runtime,
    )
    web.run_app(
        build_app(settings),  # a coroutine: run_app opens the platform in its own event loop
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        **SERVER_OPTIONS,
    )
    log.info("platform stopped")
