"""/billing: the signed-in person's subscription (a placeholder while billing is off), each
change a plain form over billing.service.Billing: subscribe (303 to Stripe Checkout), manage
billing (303 to the Customer Portal), cancel at the period's end and take it back, change plan.
A refusal (Stripe down) is shown next to the button that caused it, on the page as it was.
/billing/done and /billing/cancelled are where Stripe Checkout returns, signed in or not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from billing.service import Billing, BillingView
from db.errors import ServiceError
from db.models import User
from db.status import RUNNING_OR_ASLEEP, Status
from web.errors import STATUS_OF, BillingOff
from web.forms import form_fields
from web.keys import CONFIG, SERVICES, USER
from web.pages.billing_links import allowing_stripe_forms, billing_of_pages, date_text, status_text
from web.pages.guard import signed_in
from web.pages.instance_view import instance_view
from web.pages.render import redirect, render

routes = web.RouteTableDef()

# what a form that worked says, by the `done` of the address it lands on
DONE = {
    "cancelled": "Your subscription is cancelled: your assistants keep running until the end of the period.",
    "kept": "Your subscription continues: nothing ends.",
    "plan": "Your plan is changed. Each assistant gets the new plan's resources at its next start.",
}
VIA = {"web", "bot"}


def _billing(request: web.Request) -> Billing:
    billing = billing_of_pages(request)
    if billing is None:
        raise BillingOff()
    return billing


@routes.get("/billing")
async def billing_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    if billing_of_pages(request) is None:
        return render(request, "billing.html")
    return await _billing_page(request, user, done=DONE.get(request.query.get("done", "")))


async def _billing_page(request: web.Request, user: User, *, errors: dict | None = None, status: int = 200,
                        done: str | None = None) -> web.Response:
    billing = _billing(request)
    view = await billing.view(user)
    service = request.app[SERVICES].instances
    running = [instance_view(service, instance) for instance in await service.list(user)
               if instance.status in RUNNING_OR_ASLEEP] if view.over_limit else []
    response = render(request, "billing/index.html", {
        "view": view, "plans": list(billing.plans), "default_plan": billing.plans.default,
        "status_text": status_text(view.status), "period_end_text": date_text(view.current_period_end),
        "running": running, "errors": errors or {}, "done_notice": done,
    }, status=status)
    return allowing_stripe_forms(response, billing)


async def _act(request: web.Request, fields: set[str], act: Callable[[Billing, User, dict], Awaitable[str]],
               where: Callable[[Billing, dict], str]) -> web.Response:
    """Read the form, act, and see where `act` leads (Stripe's page, or back here with a
    notice); a refusal is shown on the page beside the button `where` names."""
    user = signed_in(request)
    billing = _billing(request)
    form = await form_fields(request, fields)
    try:
        location = await act(billing, user, form)
    except ServiceError as exc:
        return await _billing_page(request, user, errors={where(billing, form): exc.message},
                                   status=STATUS_OF.get(type(exc), 400))
    raise redirect(location)


def _beside_plan(prefix: str) -> Callable[[Billing, dict], str]:
    """Where a plan's error is shown: beside that plan's button, or atop the page for no plan."""
    def where(billing: Billing, form: dict) -> str:
        plan_id = form.get("plan") or billing.plans.default
        return f"{prefix}:{plan_id}" if billing.plans.get(plan_id) else "page"
    return where


def _beside(key: str) -> Callable[[Billing, dict], str]:
    return lambda billing, form: key


async def _checkout(billing: Billing, user: User, form: dict) -> str:
    return await billing.checkout_url(user, form.get("plan") or None, via="web")


async def _portal(billing: Billing, user: User, form: dict) -> str:
    return await billing.portal_url(user)


async def _keep(billing: Billing, user: User, form: dict) -> str:
    await billing.keep(user)
    return "/billing?done=kept"


async def _change_plan(billing: Billing, user: User, form: dict) -> str:
    await billing.change_plan(user, form.get("plan", ""))
    return "/billing?done=plan"


@routes.post("/billing/checkout")
async def checkout(request: web.Request) -> web.Response:
    return await _act(request, {"plan"}, _checkout, _beside_plan("checkout"))


@routes.post("/billing/portal")
async def portal(request: web.Request) -> web.Response:
    return await _act(request, set(), _portal, _beside("portal"))


@routes.post("/billing/keep")
async def keep(request: web.Request) -> web.Response:
    return await _act(request, set(), _keep, _beside("keep"))


@routes.post("/billing/plan")
async def change_plan(request: web.Request) -> web.Response:
    return await _act(request, {"plan"}, _change_plan, _beside_plan("plan"))


@routes.get("/billing/cancel")
async def cancel_page(request: web.Request) -> web.Response:
    """The confirmation: what cancelling means, before it is done."""
    user = signed_in(request)
    view = await _billing(request).view(user)
    if not view.entitled or view.cancel_at_period_end:
        raise redirect("/billing")
    return _cancel_page(request, view)


@routes.post("/billing/cancel")
async def cancel(request: web.Request) -> web.Response:
    user = signed_in(request)
    billing = _billing(request)
    await form_fields(request, set())
    try:
        await billing.cancel(user)
    except ServiceError as exc:
        return _cancel_page(request, await billing.view(user), exc.message, STATUS_OF.get(type(exc), 400))
    raise redirect("/billing?done=cancelled")


def _cancel_page(request: web.Request, view: BillingView, error: str | None = None, status: int = 200) -> web.Response:
    return render(request, "billing/cancel.html", {"view": view, "period_end_text": date_text(view.current_period_end),
                                                   "error": error}, status=status)


# -- where Stripe Checkout returns ------------------------------------------------------------
@routes.get("/billing/done")
async def done(request: web.Request) -> web.Response:
    """After paying. The payer may have come from Telegram and not be signed in here: the page
    then says what happens next and nothing of any account."""
    _billing(request)
    user = request.get(USER)
    waiting = None
    if user is not None:
        instances = await request.app[SERVICES].instances.list(user)
        waiting = next((i for i in instances if i.status in (Status.AWAITING_PAYMENT, Status.PROVISIONING)), None)
    return render(request, "billing/done.html", {"via": _via(request), "bot": request.app[CONFIG].telegram_bot_username,
                                                 "waiting": waiting})


@routes.get("/billing/cancelled")
async def cancelled(request: web.Request) -> web.Response:
    _billing(request)
    return render(request, "billing/cancelled.html", {"via": _via(request),
                                                      "bot": request.app[CONFIG].telegram_bot_username})


def _via(request: web.Request) -> str:
    via = request.query.get("via", "web")
    return via if via in VIA else "web"
