"""`clawfleet serve`: the composition root. One asyncio process runs the whole platform."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from bot.application import BotConfig, ProvisioningBot
from bot.context import BotServices
from clawfleet import __version__
from clawfleet.settings import Settings
from db.engine import describe_url
from provisioner.runtimes.base import Runtime
from web.app import create_app
from web.keys import DB_SESSIONS, KEYRING, PROVISIONER, SETTINGS, TELEGRAM_UPDATES

log = structlog.get_logger("clawfleet")


def build_app(settings: Settings, *, runtime: Runtime | None = None) -> web.Application:
    """Everything the platform runs, wired together: the web app and, when configured, the
    provisioning bot in the same event loop (`runtime`: tests swap in their own)."""
    bot = ProvisioningBot(BotConfig.from_settings(settings)) if settings.bot_enabled else None
    app = create_app(settings, runtime=runtime, notifier=bot.notifier if bot else None)
    if bot is not None:
        app.cleanup_ctx.append(bot_ctx(bot))  # after the provisioner: the bot calls into it
    return app


def bot_ctx(bot: ProvisioningBot):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        provisioner = app[PROVISIONER]
        services = BotServices(provisioner.accounts, provisioner.instances, app[KEYRING], provisioner.invites,
                               provisioner.access, billing_enabled=app[SETTINGS].billing_enabled)
        try:
            await bot.start(services, app[DB_SESSIONS])
        except BaseException:
            await bot.stop()  # whatever had started (the HTTP client, say) is closed again
            raise
        if bot.config.mode == "webhook":
            app[TELEGRAM_UPDATES] = bot.feed
        try:
            yield
        finally:
            await bot.stop()

    return ctx


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
