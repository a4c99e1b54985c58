"""POST /api/webhooks/telegram: the provisioning bot's updates in webhook mode.

Telegram proves the request is its own with the secret token given to setWebhook, sent back
in `X-Telegram-Bot-Api-Secret-Token`; anything else is refused before it is read.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from web.errors import error_response
from web.keys import CONFIG, SERVICES

routes = web.RouteTableDef()

PATH = "/api/webhooks/telegram"  # the bot's setWebhook URL is PUBLIC_URL + PATH
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@routes.post(PATH)
async def telegram_update(request: web.Request) -> web.Response:
    feed = request.app[SERVICES].telegram_updates
    secret = request.app[CONFIG].telegram_webhook_secret
    if feed is None or secret is None:
        return error_response(404, "not_found", "The bot does not run in webhook mode here.")
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        return error_response(401, "unauthorized", "Wrong or missing secret token.")
    try:
        update = await request.json()
    except ValueError:
        return error_response(400, "invalid_input", "The body is not JSON.")
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return error_response(400, "invalid_input", "The body is not a Telegram update.")
    await feed(update)
    return web.Response(status=200)
