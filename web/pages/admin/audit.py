"""/admin/audit: the audit log, filtered by actor, action, user, instance and time, paged."""

from __future__ import annotations

from dataclasses import fields
from aiohttp import web

from admin.audit_search import AuditFilter
from db.errors import ServiceError
from web.pages.admin.guard import admin_only, list_address, query_value
from web.pages.render import render

routes = web.RouteTableDef()
FILTERS = tuple(field.name for field in fields(AuditFilter))


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    _, tools = admin_only(request)
    wanted = AuditFilter(**{name: query_value(request, name) for name in FILTERS})
    errors: dict[str, str] = {}
    try:
        page = await tools.audit.search(wanted, after=query_value(request, "after"))
    except ServiceError as exc:
        errors[exc.field or "form"] = exc.message
        page = None
    return render(request, "admin/audit.html", {
        "page": page, "wanted": wanted, "errors": errors, "after": query_value(request, "after"),
        "base": list_address(request, FILTERS)}, status=400 if errors else 200)
