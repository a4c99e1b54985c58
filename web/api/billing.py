"""The billing routes: thin handlers over billing.service.Billing. With billing off (no
CLAWFLEET_STRIPE_SECRET_KEY) each answers 404 `billing_off`: everything is included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from billing.plans import Plan, Plans
from billing.service import Billing, BillingView
from db.models import User
from web.api.bodies import Model, json_body
from web.api.operations import operation
from web.api.schemas import (
    BillingLink,
    CheckoutRequest,
    PlanChangeRequest,
    PlanInfo,
    PlanList,
    SubscriptionInfo,
)
from web.auth import current_user
from web.errors import BillingOff
from web.keys import SERVICES

routes = web.RouteTableDef()

OFF = 404  # billing_off: this platform runs without billing
STRIPE_DOWN = 503
OFF_NOTE = " With billing off: 404, code billing_off."


def billing_of(request: web.Request) -> Billing:
    billing = request.app[SERVICES].billing
    if billing is None:
        raise BillingOff()
    return billing


def plan_info(plans: Plans, plan: Plan) -> PlanInfo:
    return PlanInfo(id=plan.id, name=plan.name, price_label=plan.price_label, instances=plan.instances,
                    memory_mb=plan.memory_mb, cpus=plan.cpus, trial_days=plan.trial_days,
                    default=plan.id == plans.default)


def subscription_json(plans: Plans, view: BillingView) -> dict:
    return SubscriptionInfo(
        plan=plan_info(plans, view.plan) if view.plan else None, status=view.status, entitled=view.entitled,
        current_period_end=view.current_period_end, cancel_at_period_end=view.cancel_at_period_end,
        running=view.running, customer=view.customer, payment_failed=view.payment_failed,
        over_limit=view.over_limit,
    ).model_dump(mode="json")


async def _asked(request: web.Request, model: type[Model]) -> tuple[User, Billing, Model]:
    """Who asks, billing (unless off), then the body: checked in that order."""
    user = current_user(request)
    billing = billing_of(request)
    return user, billing, await json_body(request, model)


def _link(url: str) -> web.Response:
    return web.json_response(BillingLink(url=url).model_dump(mode="json"))


@routes.get("/api/billing/plans")
@operation("The plans one may subscribe to", tag="billing", responses={200: PlanList}, errors=(OFF,),
           security="none", description="Anyone may read them." + OFF_NOTE)
async def list_plans(request: web.Request) -> web.Response:
    plans = billing_of(request).plans
    answer = PlanList(plans=[plan_info(plans, plan) for plan in plans], default=plans.default)
    return web.json_response(answer.model_dump(mode="json"))


@routes.get("/api/billing/subscription")
@operation("Your subscription", tag="billing", responses={200: SubscriptionInfo}, errors=(OFF,),
           description="status null: never subscribed." + OFF_NOTE)
async def subscription(request: web.Request) -> web.Response:
    user = current_user(request)
    billing = billing_of(request)
    return web.json_response(subscription_json(billing.plans, await billing.view(user)))


@routes.post("/api/billing/checkout")
@operation("A Stripe Checkout page to subscribe", tag="billing", body=CheckoutRequest, responses={200: BillingLink},
           errors=(OFF, 409, STRIPE_DOWN),
           description="Send the person to `url`; assistants waiting for payment deploy once it is paid. 409 when "
                       "subscribed already (change the plan instead); 503 when Stripe does not answer." + OFF_NOTE)
async def checkout(request: web.Request) -> web.Response:
    user, billing, body = await _asked(request, CheckoutRequest)
    return _link(await billing.checkout_url(user, body.plan, via="web"))


@routes.post("/api/billing/portal")
@operation("A Stripe Customer Portal page (card, invoices)", tag="billing", responses={200: BillingLink},
           errors=(OFF, 409, STRIPE_DOWN), description="409 before any subscription." + OFF_NOTE)
async def portal(request: web.Request) -> web.Response:
    user = current_user(request)
    return _link(await billing_of(request).portal_url(user))


@routes.post("/api/billing/cancel")
@operation("Cancel at the end of the paid period", tag="billing", responses={200: SubscriptionInfo},
           errors=(OFF, 409, STRIPE_DOWN),
           description="Assistants run until current_period_end; POST /api/billing/keep takes it back. 409 without "
                       "an active subscription." + OFF_NOTE)
async def cancel(request: web.Request) -> web.Response:
    return await _changed(request, Billing.cancel)


@routes.post("/api/billing/keep")
@operation("Keep the subscription (undo a cancel before the period ends)", tag="billing",
           responses={200: SubscriptionInfo}, errors=(OFF, 409, STRIPE_DOWN), description=OFF_NOTE.strip())
async def keep(request: web.Request) -> web.Response:
    return await _changed(request, Billing.keep)


async def _changed(request: web.Request, change: Callable[[Billing, User], Awaitable[BillingView]]) -> web.Response:
    user = current_user(request)
    billing = billing_of(request)
    return web.json_response(subscription_json(billing.plans, await change(billing, user)))


@routes.post("/api/billing/plan")
@operation("Move the subscription to another plan", tag="billing", body=PlanChangeRequest,
           responses={200: SubscriptionInfo}, errors=(OFF, 409, STRIPE_DOWN),
           description="Stripe prorates. A plan with fewer places than run stops nothing: over_limit says so, and "
                       "you choose what to stop. 409 on the same plan or without a subscription." + OFF_NOTE)
async def change_plan(request: web.Request) -> web.Response:
    user, billing, body = await _asked(request, PlanChangeRequest)
    return web.json_response(subscription_json(billing.plans, await billing.change_plan(user, body.plan)))
