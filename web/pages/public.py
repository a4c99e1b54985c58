"""The pages anyone may open: the start page, sign-up, sign-in (by password or by a one-time
link from the bot) and sign-out. Each sign-in starts a new session; the one the browser had
before, if any, is revoked."""

from __future__ import annotations

from aiohttp import web

from accounts.tokens import IssuedToken
from accounts.users import registration_problems
from db.errors import ServiceError, TooManyAttempts
from web.auth import session_cookie
from web.client_address import client_address
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES, USER, VIA_COOKIE
from web.pages.render import redirect, render
from web.sessions import end_session, start_session

routes = web.RouteTableDef()

AFTER_SIGNUP = "/onboard"
AFTER_LOGIN = "/dashboard"


@routes.get("/")
async def landing(request: web.Request) -> web.Response:
    deleted = request.query.get("deleted") == "1"  # where deleting an account lands
    return render(request, "landing.html", {"message": "Your account and its assistants are deleted." if deleted else None})


@routes.get("/signup")
async def signup_page(request: web.Request) -> web.Response:
    next_path = safe_next(request.query.get("next", ""))
    if request.get(USER):
        raise redirect(next_path or AFTER_LOGIN)
    return render(request, "signup.html", {"values": {}, "errors": {}, "next": next_path})


@routes.post("/signup")
async def signup(request: web.Request) -> web.Response:
    form = await form_fields(request, {"email", "password", "next"})
    next_path = safe_next(form.get("next", ""))
    problems = registration_problems(form.get("email", ""), form.get("password", ""))
    if problems:  # all of them at once, before the throttle counts an attempt
        return render(request, "signup.html", {"values": {"email": form.get("email", "")}, "errors": problems,
                                               "next": next_path}, status=400)
    try:
        _user, issued = await request.app[SERVICES].accounts.register(
            form.get("email", ""), form.get("password", ""), client=client_address(request))
    except ServiceError as exc:
        return _form_error(request, "signup.html", exc, {"email": form.get("email", "")}, {"next": next_path})
    return await _signed_in(request, issued, next_path or AFTER_SIGNUP)


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    next_path = safe_next(request.query.get("next", ""))
    if request.get(USER):
        raise redirect(next_path or AFTER_LOGIN)
    message = "Your password is set: sign in with it." if request.query.get("reset") == "1" else None
    return render(request, "login.html", {"values": {}, "errors": {}, "next": next_path, "message": message})


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await form_fields(request, {"email", "password", "next"})
    next_path = safe_next(form.get("next", ""))
    try:
        issued = await request.app[SERVICES].accounts.login(form.get("email", ""), form.get("password", ""),
                                                            client=client_address(request))
    except ServiceError as exc:
        return _form_error(request, "login.html", exc, {"email": form.get("email", "")},
                           {"next": next_path, "message": None})
    return await _signed_in(request, issued, next_path or AFTER_LOGIN)


@routes.get("/login/link")
async def login_link_page(request: web.Request) -> web.Response:
    """A link from the bot shows a button rather than signing in at once: link previews and
    scanners open links too, and would use it up."""
    token = request.query.get("token", "")
    return render(request, "login_link.html", {"token": token if token.isascii() else "", "error": None})


@routes.post("/login/link")
async def login_with_link(request: web.Request) -> web.Response:
    form = await form_fields(request, {"token"})
    services = request.app[SERVICES]
    try:
        user = await services.login_links.redeem(form.get("token", ""))
    except ServiceError as exc:
        return render(request, "login_link.html", {"token": "", "error": exc.message},
                      status=STATUS_OF.get(type(exc), 400))
    return await _signed_in(request, await services.accounts.start_session(user), AFTER_LOGIN)


@routes.get("/logout")
async def logout_page(request: web.Request) -> web.Response:
    return render(request, "logout.html")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    token = session_cookie(request)
    if token and request.get(VIA_COOKIE):
        await request.app[SERVICES].accounts.logout(token)
    response = web.HTTPSeeOther("/login")
    end_session(request, response)
    raise response


def safe_next(path: str) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or not path.isascii() or len(path) > 512:
        return ""
    return path


async def _signed_in(request: web.Request, issued: IssuedToken, location: str) -> web.Response:
    previous = session_cookie(request)
    if previous and request.get(VIA_COOKIE):
        await request.app[SERVICES].accounts.logout(previous)  # a new session id at each sign-in
    response = web.HTTPSeeOther(location)
    start_session(request, response, issued)
    raise response


def _form_error(request: web.Request, template: str, exc: ServiceError, values: dict,
                extra: dict | None = None) -> web.Response:
    field = exc.field if exc.field in ("email", "password") else "form"
    response = render(request, template, {"values": values, "errors": {field: exc.message}, **(extra or {})},
                      status=STATUS_OF.get(type(exc), 400))
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response
