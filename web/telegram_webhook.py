"""POST /api/webhooks/telegram: the provisioning bot's updates in webhook mode.

Telegram proves the request is its own with the secret token given to setWebhook, sent back
in `X-Telegram-Bot-Api-Secret-Token`; anything else is refused before it is read.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from db.errors import InvalidInput
from web.api.bodies import json_object
from web.auth import credential_header
from web.errors import error_response
from web.keys import CONFIG, SERVICES

routes = web.RouteTableDef()

PATH = "/api/webhooks/telegram"  # the bot's setWebhook URL is PUBLIC_URL + PATH
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20  # a message, the one it replies to and their entities fit many times over


@routes.post(PATH)
async def telegram_update(request: web.Request) -> web.Response:
    feed = request.app[SERVICES].telegram_updates
    secret = request.app[CONFIG].telegram_webhook_secret
    if feed is None or secret is None:
        return error_response(404, "not_found", "The bot does not run in webhook mode here.")
    given = credential_header(request, SECRET_HEADER)
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        return error_response(401, "unauthorized", "Wrong or missing secret token.", SECRET_HEADER)
    update = await json_object(request, None, max_bytes=MAX_UPDATE_BYTES)
    if type(update.get("update_id")) is not int:
        raise InvalidInput("A Telegram update has a numeric update_id.", field="update_id")
    for kind, value in update.items():  # besides its id, each field of an update is an object
        if kind != "update_id" and not isinstance(value, dict):
            raise InvalidInput(f"{kind} must be an object in a Telegram update.", field=kind)
    await feed(update)
    return web.Response(status=200)
