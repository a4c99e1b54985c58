"""`clawfleet serve`: the composition root. One asyncio process runs the whole platform."""

from __future__ import annotations

import structlog
from aiohttp import web

from clawfleet import __version__
from clawfleet.settings import Settings
from db.engine import describe_url
from web.app import create_app

log = structlog.get_logger("clawfleet")


def build_app(settings: Settings) -> web.Application:
    """Everything the platform runs, wired together (more resources join as they land)."""
    return create_app(settings)


def serve(settings: Settings) -> None:
    log.info(
        "starting",
        version=__version__,
        listen=f"http://{settings.http_host}:{settings.http_port}",
        database=describe_url(settings.database_url),
        runtime=settings.runtime,
    )
    web.run_app(
        build_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        access_log=None,
        shutdown_timeout=30,
    )
    log.info("stopped")
