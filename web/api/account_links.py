"""One-time links of an account (accounts/account_links.py): password resets, email proofs,
linking a Telegram account. The pages that open the links call the same use cases."""

from __future__ import annotations

from aiohttp import web

from web.api.bodies import json_body, json_object
from web.api.operations import operation
from web.api.schemas import (
    Accepted,
    EmailProof,
    EmailProofSent,
    PasswordReset,
    PasswordResetRequest,
    TelegramLinkCode,
)
from web.auth import current_user
from web.client_address import client_address
from web.keys import CONFIG, SERVICES

routes = web.RouteTableDef()

RESET_ASKED = "If an account has this email, a link to choose a new password is on its way to its owner."


@routes.post("/api/auth/password-reset")
@operation("Ask for a password reset link", tag="auth", body=PasswordResetRequest, responses={202: Accepted},
           errors=(429,), security="none",
           description="Always the same 202, whether or not the email has an account; the link goes by email, "
                       "or by the bot to a linked Telegram account.")
async def request_password_reset(request: web.Request) -> web.Response:
    body = await json_body(request, PasswordResetRequest)
    await request.app[SERVICES].account_links.request_password_reset(body.email, client=client_address(request))
    return web.json_response(Accepted(message=RESET_ASKED).model_dump(mode="json"), status=202)


@routes.post("/api/auth/password-reset/confirm")
@operation("Choose a new password with a reset link", tag="auth", body=PasswordReset, responses={204: None},
           errors=(401,), security="none", description="Uses the link up and ends every session of the account.")
async def reset_password(request: web.Request) -> web.Response:
    body = await json_body(request, PasswordReset)
    await request.app[SERVICES].account_links.reset_password(body.token, body.password)
    return web.Response(status=204)


@routes.post("/api/me/email-proof")
@operation("Send a link that proves your email address", tag="accounts", responses={202: EmailProofSent},
           errors=(409,), description="409 when this server cannot send email: ask its operator for the link.")
async def send_email_proof(request: web.Request) -> web.Response:
    user = current_user(request)
    await json_object(request, set())
    sent_by = await request.app[SERVICES].account_links.send_email_proof(user)
    return web.json_response(EmailProofSent(sent_by=sent_by).model_dump(mode="json"), status=202)


@routes.post("/api/auth/email-proof/confirm")
@operation("Prove an email address with its link", tag="auth", body=EmailProof, responses={204: None},
           errors=(401,), security="none")
async def prove_email(request: web.Request) -> web.Response:
    body = await json_body(request, EmailProof)
    await request.app[SERVICES].account_links.prove_email(body.token)
    return web.Response(status=204)


@routes.post("/api/me/telegram-link")
@operation("A one-time code that links your Telegram account", tag="accounts", responses={201: TelegramLinkCode},
           description="Send the code to ClawFleet's bot, or open the deep link, within 10 minutes.")
async def telegram_code(request: web.Request) -> web.Response:
    user = current_user(request)
    await json_object(request, set())
    issued = await request.app[SERVICES].account_links.telegram_code(user)
    bot = request.app[CONFIG].telegram_bot_username
    answer = TelegramLinkCode(code=issued.token, deep_link=f"https://t.me/{bot}?start={issued.token}" if bot else None,
                              expires_at=issued.expires_at)
    return web.json_response(answer.model_dump(mode="json"), status=201)


@routes.delete("/api/me/telegram")
@operation("Unlink your Telegram account", tag="accounts", responses={204: None}, errors=(409,),
           description="Refused while Telegram is the only way into the account.")
async def unlink_telegram(request: web.Request) -> web.Response:
    await request.app[SERVICES].account_links.unlink_telegram(current_user(request))
    return web.Response(status=204)
