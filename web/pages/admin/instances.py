"""/admin/instances: every instance, searched by text, status and owner, and paged (suspending
one: web.pages.admin.suspending)."""

from __future__ import annotations

import uuid

from aiohttp import web

from db.errors import InvalidInput, ServiceError
from db.status import Status
from web.pages.admin.guard import admin_only, list_address, query_value
from web.pages.render import render
from web.pages.status_words import status_words

routes = web.RouteTableDef()

DONE = {"suspended": "The instance is suspended; its gateway is stopping. Its owner is told in chat.",
        "resumed": "The instance is resumed. Its owner is told in chat."}


@routes.get("/admin/instances")
async def instances_page(request: web.Request) -> web.Response:
    _, tools = admin_only(request)
    wanted = {name: query_value(request, name) for name in ("q", "status", "owner")}
    errors: dict[str, str] = {}
    try:
        owner = _owner(wanted["owner"])
        page = await tools.directory.instances(wanted["q"], status=wanted["status"], owner=owner,
                                               after=query_value(request, "after"))
    except ServiceError as exc:
        errors[exc.field or "q"] = exc.message
        page = await tools.directory.instances("")
    return render(request, "admin/instances.html", {
        "page": page, "wanted": wanted, "errors": errors, "after": query_value(request, "after"),
        "base": list_address(request, tuple(wanted)), "statuses": list(Status), "words": status_words,
        "done_notice": DONE.get(query_value(request, "done")),
    }, status=400 if errors else 200)


def _owner(text: str) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput("The owner is an account id.", field="owner") from None
