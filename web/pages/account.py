"""/account: the signed-in person's own account, each section a plain form over the same use
cases as the API (accounts/users.py, api_tokens.py, account_links.py): email and password,
Telegram, API tokens, sessions, and deleting the account. A form that fails shows the page again
with the error next to its field; one that works lands back on the page with a notice."""

from __future__ import annotations

from aiohttp import web

from billing.closing import close_account
from db.errors import Conflict, ServiceError, TooManyAttempts
from db.models import User
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import CONFIG, CREDENTIAL, SERVICES
from web.pages.guard import signed_in
from web.pages.render import redirect, render
from web.sessions import end_session

routes = web.RouteTableDef()

NO_PASSWORD_TO_DELETE = ("Your account has no password yet, so nothing proves it is you asking. Set a password "
                         "under Email and password first, then delete the account here.")
# what a form that worked says, by the `done` of the address it lands on
DONE = {
    "email": "Your email is changed. Prove it with the link we send you.",
    "password": "Your password is changed. Every other session of your account is signed out.",
    "unlinked": "Your Telegram account is unlinked.",
    "revoked": "The API token is revoked: it no longer works.",
}


async def new_telegram_link(request: web.Request, user: User) -> dict:
    """A one-time code that links the Telegram account sending it to the bot, and the link that
    opens the platform's bot with it (when there is a bot): templates/account/telegram_code.html."""
    issued = await request.app[SERVICES].account_links.telegram_code(user)
    bot = request.app[CONFIG].telegram_bot_username
    return {"code": issued.token, "deep_link": f"https://t.me/{bot}?start={issued.token}" if bot else None,
            "expires_at": issued.expires_at}


async def _account_page(request: web.Request, user: User, *, errors: dict | None = None,
                        values: dict | None = None, status: int = 200, **shown) -> web.Response:
    tokens = await request.app[SERVICES].accounts.api_tokens.list(user)
    return render(request, "account/index.html", {
        "account": user, "tokens": tokens, "errors": errors or {}, "values": values or {},
        "done_notice": DONE.get(request.query.get("done", "")), "new_token": None, "telegram_link": None,
        "proof_sent_by": None, **shown,
    }, status=status)


async def _refused(request: web.Request, user: User, exc: ServiceError, field: str, values: dict | None = None,
                   fields: dict[str, str] | None = None) -> web.Response:
    """The page again with `exc` next to `field` (or next to the form field its own field names)."""
    shown_at = (fields or {}).get(exc.field or "", field)
    return with_retry_after(await _account_page(request, user, errors={shown_at: in_words(exc)}, values=values,
                                                status=STATUS_OF.get(type(exc), 400)), exc)


def in_words(exc: ServiceError) -> str:
    """A refusal as a form shows it: a throttle's says how long to wait."""
    if isinstance(exc, TooManyAttempts):
        return f"{exc.message} (try again in {exc.retry_after_s} s)"
    return exc.message


def with_retry_after(response: web.Response, exc: ServiceError) -> web.Response:
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@routes.get("/account")
async def account_page(request: web.Request) -> web.Response:
    return await _account_page(request, signed_in(request))


# -- email and password -----------------------------------------------------------------------
@routes.post("/account/email")
async def change_email(request: web.Request) -> web.Response:
    user = signed_in(request)
    form = await form_fields(request, {"email", "email_current_password"})
    try:
        await request.app[SERVICES].accounts.change_profile(
            request[CREDENTIAL], email=form.get("email", ""), current_password=form.get("email_current_password"))
    except ServiceError as exc:
        return await _refused(request, user, exc, "email", {"email": form.get("email", "")},
                              {"current_password": "email_current_password"})
    raise redirect("/account?done=email#email-password")


@routes.post("/account/email-proof")
async def send_email_proof(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    try:
        sent_by = await request.app[SERVICES].account_links.send_email_proof(user)
    except ServiceError as exc:
        return await _refused(request, user, exc, "email_proof", fields={"email": "email_proof"})
    return await _account_page(request, user, status=202, proof_sent_by=sent_by)


@routes.post("/account/password")
async def change_password(request: web.Request) -> web.Response:
    user = signed_in(request)
    form = await form_fields(request, {"current_password", "new_password"})
    try:
        await request.app[SERVICES].accounts.change_profile(
            request[CREDENTIAL], password=form.get("new_password", ""), current_password=form.get("current_password"))
    except ServiceError as exc:
        return await _refused(request, user, exc, "new_password",
                              fields={"password": "new_password", "current_password": "current_password"})
    raise redirect("/account?done=password#email-password")


# -- Telegram ---------------------------------------------------------------------------------
@routes.post("/account/telegram/code")
async def telegram_code(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    return await _account_page(request, user, telegram_link=await new_telegram_link(request, user))


@routes.post("/account/telegram/unlink")
async def unlink_telegram(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    try:
        await request.app[SERVICES].account_links.unlink_telegram(user)
    except ServiceError as exc:
        return await _refused(request, user, exc, "telegram")
    raise redirect("/account?done=unlinked#telegram")


# -- API tokens -------------------------------------------------------------------------------
@routes.post("/account/tokens")
async def create_token(request: web.Request) -> web.Response:
    """The new token is on this answer only: it is stored as its hash, and a reload shows the list."""
    user = signed_in(request)
    form = await form_fields(request, {"token_name", "can_manage_tokens"})
    try:
        issued = await request.app[SERVICES].accounts.api_tokens.create(
            request[CREDENTIAL], form.get("token_name", ""), can_manage_tokens=form.get("can_manage_tokens") == "1")
    except ServiceError as exc:
        return await _refused(request, user, exc, "token_name", dict(form), {"name": "token_name"})
    response = await _account_page(request, user, status=201, new_token=issued)
    response.headers["Cache-Control"] = "no-store"  # the secret stays out of the browser's cache
    return response


@routes.post("/account/tokens/{id}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    try:
        await request.app[SERVICES].accounts.api_tokens.revoke(request[CREDENTIAL], request.match_info["id"])
    except ServiceError as exc:
        return await _refused(request, user, exc, "tokens")
    raise redirect("/account?done=revoked#api-tokens")


# -- sessions ---------------------------------------------------------------------------------
@routes.post("/account/sessions/end")
async def end_all_sessions(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    await request.app[SERVICES].accounts.end_all_sessions(user)
    response = web.HTTPSeeOther("/login")
    end_session(request, response)
    raise response


# -- deleting the account ---------------------------------------------------------------------
@routes.get("/account/delete")
async def delete_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    return await _delete_page(request, user)


async def _delete_page(request: web.Request, user: User, error: str | None = None, status: int = 200) -> web.Response:
    instances = await request.app[SERVICES].instances.list(user)
    return render(request, "account/delete.html", {"account": user, "instances": instances, "error": error,
                                                   "no_password": NO_PASSWORD_TO_DELETE}, status=status)


@routes.post("/account/delete")
async def delete_account(request: web.Request) -> web.Response:
    """As DELETE /api/me: the password, then every instance (gateway stopped, data erased), then
    the account. An account without a password must set one first: a stolen session alone
    cannot delete it."""
    user = signed_in(request)
    form = await form_fields(request, {"password"})
    services = request.app[SERVICES]
    try:
        if user.password_hash is None:
            raise Conflict(NO_PASSWORD_TO_DELETE, field="password")
        await services.accounts.confirm_deletion(user, form.get("password"))
        await close_account(user, accounts=services.accounts, instances=services.instances, billing=services.billing)
    except ServiceError as exc:
        return with_retry_after(await _delete_page(request, user, in_words(exc), status=STATUS_OF.get(type(exc), 400)),
                                exc)
    response = web.HTTPSeeOther("/?deleted=1")
    end_session(request, response)
    raise response
