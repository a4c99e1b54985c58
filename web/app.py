"""`create_app(services, config)`: the aiohttp application over services already opened by the
composition root (clawfleet/platform.py): its middlewares and routes, nothing more."""

from __future__ import annotations

from aiohttp import web

from web import edge, health, metrics, telegram_webhook
from web.api import admin as admin_api
from web.api import account_links, auth_routes, instance_backups, instances, me, openapi, stripe_webhook, tokens, usage
from web.api import billing as billing_api
from web.auth import authenticate
from web.csrf import forgery_guard
from web.errors import json_errors
from web.instance_site import sign_in as instance_sign_in
from web.instance_site.routing import instance_hosts
from web.keys import CONFIG, SERVICES
from web.pages import account, billing, dashboard, instance, instance_settings, onboard, pairing, public
from web.pages import instance_backups as instance_backup_pages
from web.pages import account_links as account_link_pages
from web.pages import admin as admin_pages
from web.pages.errors import page_errors
from web.pages.render import STATIC, setup_templates
from web.request_metrics import request_metrics
from web.security_headers import security_headers
from web.services import WebConfig, WebServices


def create_app(services: WebServices, config: WebConfig) -> web.Application:
    # Outermost first: an instance's own host is served apart from everything else; then errors
    # become JSON (API) or pages, then who is calling, then whether a browser could have been
    # made to send it. Around them all, every request is counted and timed.
    app = web.Application(middlewares=[request_metrics, instance_hosts, json_errors, page_errors, authenticate,
                                       forgery_guard])
    app[SERVICES] = services
    app[CONFIG] = config
    setup_templates(app)
    app.on_response_prepare.append(security_headers)
    app.add_routes(health.routes)
    app.add_routes(edge.routes)
    app.add_routes(metrics.routes)
    app.add_routes(auth_routes.routes)
    app.add_routes(instances.routes)
    app.add_routes(instance_backups.routes)
    app.add_routes(admin_api.routes)
    app.add_routes(account_links.routes)
    app.add_routes(telegram_webhook.routes)
    app.add_routes(billing_api.routes)
    app.add_routes(stripe_webhook.routes)
    app.add_routes(public.routes)
    app.add_routes(billing.routes)
    app.add_routes(dashboard.routes)
    app.add_routes(instance.routes)
    app.add_routes(instance_settings.routes)
    app.add_routes(instance_backup_pages.routes)
    app.add_routes(tokens.routes)
    app.add_routes(me.routes)
    app.add_routes(usage.routes)
    app.add_routes(openapi.routes)
    app.add_routes(pairing.routes)
    app.add_routes(onboard.routes)
    app.add_routes(account.routes)
    app.add_routes(account_link_pages.routes)
    app.add_routes(instance_sign_in.routes)
    app.add_routes(admin_pages.ROUTES)
    app.router.add_static("/static/", STATIC, name="static")
    return app
