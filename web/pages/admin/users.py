"""/admin/users: every account, searched and paged (suspending all of one's instances:
web.pages.admin.suspending)."""

from __future__ import annotations

from aiohttp import web

from db.errors import ServiceError
from web.keys import SERVICES
from web.pages.admin.guard import admin_only, list_address, query_value
from web.pages.render import redirect, render

routes = web.RouteTableDef()

DONE = {
    "admin": "You are an admin now.",
    "suspended": "Their instances are suspended; their gateways are stopping. They are told in chat.",
    "resumed": "Their instances are resumed. They are told in chat.",
}


@routes.get("/admin")
async def section(request: web.Request) -> web.Response:
    admin_only(request)
    raise redirect("/admin/users")


@routes.get("/admin/users")
async def users_page(request: web.Request) -> web.Response:
    _, tools = admin_only(request)
    query = query_value(request, "q")
    errors: dict[str, str] = {}
    try:
        page = await tools.directory.users(query, after=query_value(request, "after"))
    except ServiceError as exc:
        errors[exc.field or "q"] = exc.message
        page = await tools.directory.users("")
    return render(request, "admin/users.html", {
        "page": page, "q": query, "errors": errors, "after": query_value(request, "after"),
        "base": list_address(request, ("q",)), "totals": await tools.directory.totals(),
        "billing": request.app[SERVICES].billing is not None, "done_notice": DONE.get(query_value(request, "done")),
    }, status=400 if errors else 200)
