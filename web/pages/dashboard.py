"""/dashboard: the signed-in person's assistants, each with its status and what needs them."""

from __future__ import annotations

from aiohttp import web

from db.status import COUNTED
from web.keys import SERVICES
from web.pages.billing_links import payment_failed
from web.pages.guard import signed_in
from web.pages.instance_view import instance_view
from web.pages.render import render
from web.pages.status_words import for_scripts

routes = web.RouteTableDef()

# Notices a page that redirected here may ask for, by name: the query never supplies the words.
NOTICES = {"deleted": "Your assistant is being deleted. It disappears from this list once it is gone."}


@routes.get("/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    user = signed_in(request)
    service = request.app[SERVICES].instances
    instances = await service.list(user)
    allowance = await service.entitlements.allowance(user)
    counted = sum(1 for instance in instances if instance.status in COUNTED)
    return render(request, "dashboard.html", {
        "instances": [instance_view(service, instance) for instance in instances],
        "may_add": counted < allowance.max_instances,
        "max_instances": allowance.max_instances,
        "notice_text": NOTICES.get(request.query.get("notice", "")),
        "words": for_scripts(),
        "payment_banner": await payment_failed(request, user),
    })
