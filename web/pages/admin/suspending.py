"""Suspending and resuming from the admin section, one instance or all of a user's: a confirmation
page (with the reason, for a suspension), then the post that does it (admin.suspensions), or the
page again with the error next to its field."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from admin.operators import actor_of
from admin.tools import AdminTools
from db.errors import NotFound, ServiceError
from db.models import Instance
from web.errors import STATUS_OF
from web.forms import form_fields
from web.pages.admin.guard import admin_only
from web.pages.render import redirect, render

routes = web.RouteTableDef()
PATH = r"/admin/{kind:users|instances}/{id}/{verb:suspend|resume}"


@dataclass(frozen=True)
class Target:
    what: str  # in words, for the confirmation
    instances: list[Instance]
    listed_at: str  # the list filtered down to it
    suspend: Callable[..., Awaitable[object]]
    resume: Callable[..., Awaitable[object]]


@routes.get(PATH)
async def confirm_page(request: web.Request) -> web.Response:
    return await _confirm(request, await _target(request))


@routes.post(PATH)
async def act(request: web.Request) -> web.Response:
    admin, _ = admin_only(request)
    target, verb = await _target(request), request.match_info["verb"]
    form = await form_fields(request, {"reason"} if verb == "suspend" else set())
    try:
        if verb == "suspend":
            await target.suspend(actor=actor_of(admin), reason=form.get("reason", ""))
        else:
            await target.resume(actor=actor_of(admin))
    except ServiceError as exc:
        return await _confirm(request, target, {"reason" if exc.field == "reason" else "form": exc.message},
                              form.get("reason", ""), status=STATUS_OF.get(type(exc), 400))
    raise redirect(f"{target.listed_at}&done={verb}ed")


async def _confirm(request: web.Request, target: Target, errors: dict | None = None, reason: str = "", *,
                   status: int = 200) -> web.Response:
    verb = request.match_info["verb"]
    return render(request, "admin/confirm.html", {
        "verb": verb, "what": target.what, "action": request.path, "back": target.listed_at,
        "instances": target.instances, "errors": errors or {}, "reason": reason}, status=status)


async def _target(request: web.Request) -> Target:
    _, tools = admin_only(request)
    try:
        key = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    return await (_user_target if request.match_info["kind"] == "users" else _instance_target)(tools, key)


async def _user_target(tools: AdminTools, user_id: uuid.UUID) -> Target:
    user = await tools.directory.user(user_id)
    if user is None:
        raise NotFound("No user has this id.")
    owned = await tools.directory.instances(owner=user.id, size=200)
    return Target(f"every instance of {user.email or f'Telegram user {user.telegram_user_id}'}",
                  [row.instance for row in owned.rows], f"/admin/users?q={user.id}",
                  lambda **given: tools.suspensions.suspend_user(user.id, **given),
                  lambda **given: tools.suspensions.resume_user(user.id, **given))


async def _instance_target(tools: AdminTools, instance_id: uuid.UUID) -> Target:
    row = await tools.directory.instance(instance_id)
    if row is None:
        raise NotFound("No instance has this id.")
    instance = row.instance
    name = f"@{instance.telegram_bot_username}" if instance.telegram_bot_username else instance.subdomain
    return Target(f"{name} of {row.owner_email or f'Telegram user {row.owner_telegram_id}'}", [instance],
                  f"/admin/instances?q={instance.id}",
                  lambda **given: tools.suspensions.suspend(instance.id, **given),
                  lambda **given: tools.suspensions.resume(instance.id, **given))
