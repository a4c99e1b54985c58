"""`create_app(services, config)`: the aiohttp application over services already opened by the
composition root (clawfleet/platform.py): its middlewares and routes, nothing more."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from web import health, telegram_webhook
from web.api import auth_routes, instances, me, openapi, tokens
from web.auth import authenticate
from web.errors import json_errors
from web.keys import CONFIG, SERVICES
from web.services import WebConfig, WebServices


def create_app(services: WebServices, config: WebConfig) -> web.Application:
    app = web.Application(middlewares=[json_errors, authenticate])
    app[SERVICES] = services
    app[CONFIG] = config
    app.add_routes(health.routes)
    app.add_routes(auth_routes.routes)
    app.add_routes(instances.routes)
    app.add_routes(telegram_webhook.routes)
    app.add_routes(tokens.routes)
    app.add_routes(me.routes)
    app.add_routes(openapi.routes)
    app.router.add_static("/static/", Path(__file__).parent / "static", name="static")
    return app
