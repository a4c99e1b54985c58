"""The pages one-time links open (accounts/account_links.py): asking for a password reset,
choosing a new password with the link, proving an email. A link's page shows a button that posts
its token rather than acting on the GET: scanners and link previews open links too."""

from __future__ import annotations

from aiohttp import web

from db.errors import ServiceError
from web.api.account_links import RESET_ASKED
from web.client_address import client_address
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES
from web.pages.account import in_words, with_retry_after
from web.pages.render import redirect, render

routes = web.RouteTableDef()


def _token_of(request: web.Request) -> str:
    token = request.query.get("token", "")
    return token if token.isascii() and len(token) <= 200 else ""


@routes.get("/forgot-password")
async def forgot_page(request: web.Request) -> web.Response:
    return render(request, "account/forgot.html", {"values": {}, "errors": {}, "sent": None})


@routes.post("/forgot-password")
async def forgot(request: web.Request) -> web.Response:
    """The same answer whether or not the email has an account, as POST /api/auth/password-reset."""
    form = await form_fields(request, {"email"})
    try:
        await request.app[SERVICES].account_links.request_password_reset(form.get("email", ""),
                                                                         client=client_address(request))
    except ServiceError as exc:
        response = render(request, "account/forgot.html", {
            "values": {"email": form.get("email", "")}, "errors": {"email": in_words(exc)}, "sent": None},
            status=STATUS_OF.get(type(exc), 400))
        return with_retry_after(response, exc)
    return render(request, "account/forgot.html", {"values": {}, "errors": {}, "sent": RESET_ASKED})


@routes.get("/reset-password")
async def reset_page(request: web.Request) -> web.Response:
    return render(request, "account/reset.html", {"token": _token_of(request), "errors": {}})


@routes.post("/reset-password")
async def reset(request: web.Request) -> web.Response:
    form = await form_fields(request, {"token", "password"})
    token = form.get("token", "")
    try:
        await request.app[SERVICES].account_links.reset_password(token, form.get("password", ""))
    except ServiceError as exc:
        used_up = exc.field != "password"  # the link is no good: a new one is needed, not another password
        return render(request, "account/reset.html", {
            "token": "" if used_up else token, "errors": {"password" if not used_up else "token": in_words(exc)}},
            status=STATUS_OF.get(type(exc), 400))
    raise redirect("/login?reset=1")


@routes.get("/verify-email")
async def verify_page(request: web.Request) -> web.Response:
    return render(request, "account/verify.html", {"token": _token_of(request), "error": None, "proven": False})


@routes.post("/verify-email")
async def verify(request: web.Request) -> web.Response:
    form = await form_fields(request, {"token"})
    try:
        await request.app[SERVICES].account_links.prove_email(form.get("token", ""))
    except ServiceError as exc:
        return render(request, "account/verify.html", {"token": "", "error": in_words(exc), "proven": False},
                      status=STATUS_OF.get(type(exc), 400))
    return render(request, "account/verify.html", {"token": "", "error": None, "proven": True})
