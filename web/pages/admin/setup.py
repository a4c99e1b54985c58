"""/admin/setup: the one-time setup link the platform logs while no admin exists (admin.operators).
Opened signed in, it shows a button (scanners and link previews open links too, and would use it
up); signed out, ways to sign in or up that come back here."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from accounts.login_links import ADMIN_SETUP, refused
from db.errors import ServiceError
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES, USER
from web.pages.render import redirect, render

routes = web.RouteTableDef()


def _token(value: str) -> str:
    return value if value.isascii() and len(value) <= 200 else ""


@routes.get("/admin/setup")
async def setup_page(request: web.Request) -> web.Response:
    tools = request.app[SERVICES].admin
    if tools is None:
        raise web.HTTPNotFound()
    token = _token(request.query.get("token", ""))
    usable = bool(token) and await tools.operators.usable_setup_link(token)
    back = quote(f"/admin/setup?token={token}", safe="")
    return render(request, "admin/setup.html", {"token": token if usable else "", "back": back,
                                                "error": None if usable else refused(ADMIN_SETUP).message}, status=200 if usable else 404)


@routes.post("/admin/setup")
async def redeem(request: web.Request) -> web.Response:
    tools, user = request.app[SERVICES].admin, request.get(USER)
    if tools is None:
        raise web.HTTPNotFound()
    form = await form_fields(request, {"token"})
    token = _token(form.get("token", ""))
    if user is None:
        raise redirect(f"/login?next={quote(f'/admin/setup?token={token}', safe='')}")
    try:
        await tools.operators.redeem_setup_link(token, user)
    except ServiceError as exc:
        return render(request, "admin/setup.html", {"token": "", "back": "", "error": exc.message},
                      status=STATUS_OF.get(type(exc), 400))
    raise redirect("/admin/users?done=admin")

