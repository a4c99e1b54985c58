"""One-time links of an account (accounts/account_links.py): password resets, email proofs,
linking a Telegram account. The pages that open the links call the confirm routes."""

from __future__ import annotations

from aiohttp import web

from web.api.bodies import json_object
from web.auth import current_user
from web.client_address import client_address
from web.keys import CONFIG, SERVICES

routes = web.RouteTableDef()

RESET_ASKED = "If an account has this email, a link to choose a new password is on its way to its owner."


@routes.post("/api/auth/password-reset")
async def request_password_reset(request: web.Request) -> web.Response:
    """Always the same 202, whether or not the email has an account."""
    body = await json_object(request, {"email"})
    await request.app[SERVICES].account_links.request_password_reset(body.get("email"),
                                                                    client=client_address(request))
    return web.json_response({"message": RESET_ASKED}, status=202)


@routes.post("/api/auth/password-reset/confirm")
async def reset_password(request: web.Request) -> web.Response:
    body = await json_object(request, {"token", "password"})
    await request.app[SERVICES].account_links.reset_password(body.get("token"), body.get("password"))
    return web.Response(status=204)


@routes.post("/api/me/email-proof")
async def send_email_proof(request: web.Request) -> web.Response:
    user = current_user(request)
    await json_object(request, set())
    sent_by = await request.app[SERVICES].account_links.send_email_proof(user)
    return web.json_response({"sent_by": sent_by}, status=202)


@routes.post("/api/auth/email-proof/confirm")
async def prove_email(request: web.Request) -> web.Response:
    body = await json_object(request, {"token"})
    await request.app[SERVICES].account_links.prove_email(body.get("token"))
    return web.Response(status=204)


@routes.post("/api/me/telegram-link")
async def telegram_code(request: web.Request) -> web.Response:
    """A code to send ClawFleet's bot, and the t.me link that sends it (null while the bot is off)."""
    user = current_user(request)
    await json_object(request, set())
    issued = await request.app[SERVICES].account_links.telegram_code(user)
    bot = request.app[CONFIG].telegram_bot_username
    return web.json_response({"code": issued.token,
                              "deep_link": f"https://t.me/{bot}?start={issued.token}" if bot else None,
                              "expires_at": issued.expires_at.isoformat()}, status=201)


@routes.delete("/api/me/telegram")
async def unlink_telegram(request: web.Request) -> web.Response:
    await request.app[SERVICES].account_links.unlink_telegram(current_user(request))
    return web.Response(status=204)
