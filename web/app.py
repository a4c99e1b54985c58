"""`create_app(settings)`: the aiohttp application, its resources and its routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from clawfleet.settings import Settings
from db.engine import create_engine, create_session_factory
from db.keyfile import load_keyring
from provisioner.assembly import open_provisioner
from provisioner.notify import Notifier
from provisioner.runtimes.base import Runtime
from web import health, telegram_webhook
from web.api import auth_routes, instances
from web.auth import authenticate
from web.errors import json_errors
from web.keys import DB_ENGINE, DB_SESSIONS, KEYRING, PROVISIONER, SETTINGS


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].database_url)
    app[DB_ENGINE] = engine
    app[DB_SESSIONS] = create_session_factory(engine)
    yield
    await engine.dispose()


async def keyring_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[KEYRING] = load_keyring(settings.data_dir, [k.get_secret_value() for k in settings.secret_keys])
    yield


def provisioner_ctx(runtime: Runtime | None, notifier: Notifier | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_provisioner(app[SETTINGS], app[DB_SESSIONS], app[KEYRING], runtime=runtime,
                                    notifier=notifier) as provisioner:
            app[PROVISIONER] = provisioner
            yield

    return ctx


def create_app(settings: Settings, *, runtime: Runtime | None = None,
               notifier: Notifier | None = None) -> web.Application:
    """`runtime` replaces the one settings choose (tests use in-memory runtimes); `notifier`
    is how the platform tells users things (the bot's, when it runs)."""
    app = web.Application(middlewares=[json_errors, authenticate])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(database_ctx)  # first: everything after it may use the database
    app.cleanup_ctx.append(keyring_ctx)
    app.cleanup_ctx.append(provisioner_ctx(runtime, notifier))
    app.add_routes(health.routes)
    app.add_routes(auth_routes.routes)
    app.add_routes(instances.routes)
    app.add_routes(telegram_webhook.routes)
    return app
