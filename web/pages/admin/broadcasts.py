"""/admin/broadcasts: write a message to every bot user (confirmed by a checkbox naming how many),
and follow each broadcast's delivery."""

from __future__ import annotations

from aiohttp import web

from admin.broadcasts import checked_text
from admin.operators import actor_of
from db.errors import InvalidInput, ServiceError
from web.errors import STATUS_OF
from web.forms import form_fields
from web.pages.admin.guard import admin_only, query_value
from web.pages.render import redirect, render

routes = web.RouteTableDef()
REFRESH_S = 3  # a broadcast's page reloads itself this often until it is done


@routes.get("/admin/broadcasts")
async def broadcasts_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/admin/broadcasts")
async def queue(request: web.Request) -> web.Response:
    admin, tools = admin_only(request)
    form = await form_fields(request, {"text", "confirm"})
    try:
        checked_text(form.get("text"))  # what is wrong with the message is said first
        if form.get("confirm") != "yes":
            raise InvalidInput("Tick the box to confirm who gets it: a broadcast cannot be taken back.",
                               field="confirm")
        broadcast = await tools.broadcasts.queue(form.get("text"), actor=actor_of(admin), created_by=admin.id)
    except ServiceError as exc:
        return await _page(request, {exc.field or "text": exc.message}, form.get("text", ""),
                           status=STATUS_OF.get(type(exc), 400))
    raise redirect(f"/admin/broadcasts/{broadcast.id}")


@routes.get("/admin/broadcasts/{id}")
async def broadcast_page(request: web.Request) -> web.Response:
    _, tools = admin_only(request)
    progress = await tools.broadcasts.progress(request.match_info["id"])
    return render(request, "admin/broadcast.html", {"progress": progress, "refresh_s": REFRESH_S,
                                                    "bot_running": tools.bot_running})


async def _page(request: web.Request, errors: dict | None = None, text: str = "", *, status: int = 200) -> web.Response:
    _, tools = admin_only(request)
    return render(request, "admin/broadcasts.html", {
        "latest": await tools.broadcasts.latest(after=query_value(request, "after"), size=20),
        "recipients": await tools.broadcasts.recipients(), "errors": errors or {}, "text": text,
        "bot_running": tools.bot_running,
    }, status=status)
