"""Approving a Telegram pairing code from the dashboard. An instance whose owner's Telegram id
ClawFleet does not know runs OpenClaw's DM pairing: its bot answers a newcomer with a code, and
the code typed here makes that sender the owner. The form is a partial
(instances/pairing.html) the instance page includes with `pairing_form(request, instance)`;
errors and GET /instances/{id}/pairing show it on a page of its own."""

from __future__ import annotations

from aiohttp import web

from db.errors import NotFound, ServiceError
from db.models import Instance
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES
from web.pages.guard import signed_in
from web.pages.render import redirect, render

routes = web.RouteTableDef()

PAIRED_QUERY = "paired"  # /instances/{id}?paired=1 after a code was approved


def pairing_form(request: web.Request, instance: Instance, *, code: str = "", error: str | None = None,
                 problem: str | None = None) -> dict:
    """What instances/pairing.html needs: whether to ask for a code, what was typed, the code's
    error, one about the instance (not running, say), and the notice after an approval (its
    words from the row, never from the address)."""
    paired = request.query.get(PAIRED_QUERY) == "1" and instance.telegram_allow_from is not None
    return {
        "ask": instance.telegram_bot_id is not None and (
            instance.telegram_allow_from is None or error is not None or problem is not None),
        "code": code,
        "error": error,
        "problem": problem,
        "notice": f"Paired: your bot now answers Telegram user {instance.telegram_allow_from}, and only them: "
                  "message it again to begin." if paired else None,
    }


def _page(request: web.Request, instance: Instance, *, status: int = 200, **form: str | None) -> web.Response:
    return render(request, "instances/pairing_page.html",
                  {"instance": instance, "pairing": pairing_form(request, instance, **form)}, status=status)


@routes.get("/instances/{id}/pairing")
async def pairing_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])
    return _page(request, instance)


@routes.post("/instances/{id}/pairing")
async def approve_pairing(request: web.Request) -> web.Response:
    user = signed_in(request)
    service = request.app[SERVICES].instances
    instance = await service.get(user, request.match_info["id"])  # someone else's: the 404 page
    form = await form_fields(request, {"code"})
    code = form.get("code", "")
    try:
        await service.approve_pairing(user, instance.id, code)
    except NotFound:
        raise
    except ServiceError as exc:
        about_code = exc.field == "code"
        return _page(request, instance, code=code[:32], status=STATUS_OF.get(type(exc), 400),
                     error=exc.message if about_code else None, problem=None if about_code else exc.message)
    raise redirect(f"/instances/{instance.id}?{PAIRED_QUERY}=1")
