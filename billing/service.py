"""Billing's use cases, for the bot, the web app and Stripe's webhooks.

Every change of a subscription, whoever caused it, goes through `_apply`: the subscription is
read again from Stripe, written to its row, and what follows from it is queued in the outbox, in
one transaction, with an audit row; the outbox worker then carries it out (billing.effects)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.effects import plan_effects
from billing.plans import Plan, Plans
from billing.stripe_client import StripeApi
from billing.subscriptions import (
    ENTITLED,
    FINAL,
    StripeSubscription,
    read_subscription,
    record,
    rows_of,
    standing_of,
)
from billing.webhooks import SignatureRefused, verified_event
from db import audit
from db.errors import Conflict, InvalidInput, NotFound
from db.models import Instance, Subscription, User, WebhookEvent
from db.status import RUNNING_OR_ASLEEP, Status
from db.types import utcnow
from metrics import Metrics

log = structlog.get_logger(__name__)

# The events acted on; any other is recorded and answered 200 (Stripe sends what the endpoint asks for).
SUBSCRIPTION_EVENTS = frozenset({"customer.subscription.created", "customer.subscription.updated",
                                 "customer.subscription.deleted", "customer.subscription.paused",
                                 "customer.subscription.resumed"})
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded"})
CHECKOUT_COMPLETED = "checkout.session.completed"
HANDLED = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | {CHECKOUT_COMPLETED}


@dataclass(frozen=True)
class BillingConfig:
    plans: Plans
    public_url: str
    webhook_secrets: tuple[SecretStr, ...] = ()
    data_retention_days: int = 30


@dataclass(frozen=True)
class BillingView:
    """What a person's billing page and GET /api/billing/subscription show."""

    plan: Plan | None  # the plan of the subscription that decides (entitled, or last seen)
    status: str | None  # Stripe's word for it; None: never subscribed
    entitled: bool
    current_period_end: datetime | None  # renews then, or ends then when cancel_at_period_end
    cancel_at_period_end: bool
    running: int  # assistants taking a place of the plan's
    customer: bool  # has a Stripe customer (so the Customer Portal can open)

    @property
    def payment_failed(self) -> bool:
        return self.status in ("past_due", "unpaid")

    @property
    def over_limit(self) -> bool:
        """A downgrade left more running than the plan allows: the owner chooses what stops."""
        return self.entitled and self.plan is not None and self.running > self.plan.instances


class Billing:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], stripe: StripeApi, config: BillingConfig,
                 *, wake: Callable[[], None] = lambda: None, metrics: Metrics | None = None) -> None:
        self.sessions = sessions
        self.stripe = stripe
        self.config = config
        self.wake = wake  # the outbox worker, told that effects are waiting
        self.metrics = metrics or Metrics()  # the platform's; a registry of its own otherwise (unscraped)

    @property
    def plans(self) -> Plans:
        return self.config.plans

    @property
    def stripe_api_url(self) -> str | None:
        """The Stripe-compatible server the platform is pointed at, when not Stripe's own (its pages
        are then where Checkout and the portal live)."""
        return self.stripe.config.api_url

    # -- what a person sees -----------------------------------------------------------------
    async def view(self, user: User) -> BillingView:
        async with self.sessions() as session:
            rows = await rows_of(session, user.id)
            running = await session.scalar(select(func.count()).select_from(Instance).where(
                Instance.user_id == user.id, Instance.status.in_(RUNNING_OR_ASLEEP)))
            customer = await session.scalar(select(User.stripe_customer_id).where(User.id == user.id))
        standing = standing_of(rows)
        row = _deciding(rows, standing)
        return BillingView(plan=self.plans.get(standing.plan) if standing.plan else None, status=standing.status,
                           entitled=standing.entitled,
                           current_period_end=row.current_period_end if row else None,
                           cancel_at_period_end=bool(row and row.cancel_at_period_end), running=running or 0,
                           customer=customer is not None)

    def plan(self, plan_id: object) -> Plan:
        """The plan a front end names (None: the default); InvalidInput naming `plan` otherwise."""
        if plan_id in (None, ""):
            return self.plans.get(self.plans.default)
        plan = self.plans.get(plan_id) if isinstance(plan_id, str) else None
        if plan is None:
            names = ", ".join(plan.id for plan in self.plans)
            raise InvalidInput(f"There is no plan {str(plan_id)[:40]!r}; choose one of: {names}.", field="plan")
        return plan

    # -- checkout, the portal, cancelling, changing plan ----------------------------------------
    async def checkout_url(self, user: User, plan_id: object = None, *, via: str = "web") -> str:
        """A Stripe Checkout page for a subscription to the plan; `via` ("web" or "bot") is where
        the pages it returns to lead back to. Asked again within the hour, and before a payment
        was recorded, it is the same page (its idempotency key names the hour and how many
        subscriptions the user has had: a replayed answer would show a paid page as still open)."""
        plan = self.plan(plan_id)
        view = await self.view(user)
        if view.entitled:
            raise Conflict("You have a subscription already: change its plan on the billing page (or /plan).",
                           field="plan")
        customer = await self._customer(user)
        back = f"{self.config.public_url}/billing/"
        async with self.sessions() as session:
            had = len(await rows_of(session, user.id))
        session = await self.stripe.create_checkout(
            customer=customer, user_id=str(user.id), price=plan.stripe_price, plan_id=plan.id,
            trial_days=plan.trial_days, success_url=f"{back}done?via={via}&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{back}cancelled?via={via}", attempt=f"{utcnow():%Y%m%d%H}:{had}",
            overage_price=plan.overage_price)
        await self._audit(user.id, "billing.checkout", {"plan": plan.id, "via": via, "session": session.id})
        return session.url

    async def portal_url(self, user: User) -> str:
        """Stripe's Customer Portal (card, invoices, cancelling), returning to the billing page."""
        async with self.sessions() as session:
            customer = await session.scalar(select(User.stripe_customer_id).where(User.id == user.id))
        if customer is None:
            raise Conflict("You have no subscription yet: choose a plan first.")
        portal = await self.stripe.create_portal(customer=customer, return_url=f"{self.config.public_url}/billing")
        return portal.url

    async def cancel(self, user: User) -> BillingView:
        """Cancel at the end of the period that is paid for: the assistant runs until then."""
        return await self._cancel_at_period_end(user, True)

    async def keep(self, user: User) -> BillingView:
        """Take a cancellation back before its period ends."""
        return await self._cancel_at_period_end(user, False)

    async def _cancel_at_period_end(self, user: User, at_period_end: bool) -> BillingView:
        row = await self._current(user)
        if row.cancel_at_period_end == at_period_end:
            return await self.view(user)
        updated = await self.stripe.set_cancel_at_period_end(row.stripe_subscription_id, at_period_end,
                                                             since=row.updated_at.isoformat())
        await self._apply([read_subscription(updated)], cause=f"request-{uuid.uuid4()}", actor="user",
                          owner=user.id)
        await self._audit(user.id, "billing.cancel" if at_period_end else "billing.resume",
                          {"subscription": row.stripe_subscription_id})
        return await self.view(user)

    async def change_plan(self, user: User, plan_id: object) -> BillingView:
        """Move the subscription to another plan (Stripe prorates); resources change at each
        assistant's next start, which the owner is offered. A plan with fewer places than run
        stops nothing: the owner is asked which to stop."""
        plan = self.plan(plan_id)
        row = await self._current(user)
        if row.plan == plan.id:
            raise Conflict(f"You are on the {plan.name} plan already.", field="plan")
        facts = read_subscription(await self.stripe.subscription(row.stripe_subscription_id))
        if facts.item_id is None:
            raise Conflict("Your subscription cannot be changed here; use Manage billing.")
        updated = await self.stripe.change_price(facts.id, facts.item_id, plan.stripe_price,
                                                 since=row.updated_at.isoformat(),
                                                 metered=metered_changes(facts.metered_items, plan.overage_price))
        await self._apply([read_subscription(updated)], cause=f"request-{uuid.uuid4()}", actor="user",
                          owner=user.id, told=True)
        await self._audit(user.id, "billing.change_plan", {"from": row.plan, "to": plan.id})
        return await self.view(user)

    async def cancel_for_deletion(self, user: User) -> None:
        """Before an account goes: its subscriptions end now, so nobody is billed for an account
        that does not exist. Raises (and the deletion waits) when Stripe cannot be reached."""
        async with self.sessions() as session:
            rows = [row for row in await rows_of(session, user.id) if row.status not in FINAL]
        for row in rows:
            cancelled = await self.stripe.cancel_now(row.stripe_subscription_id)
            await self._apply([read_subscription(cancelled)], cause=f"deletion-{user.id}", actor="user",
                              owner=user.id, effects=False)
        if rows:
            await self._audit(user.id, "billing.cancel_for_deletion",
                              {"subscriptions": [row.stripe_subscription_id for row in rows]})

    # -- Stripe's webhooks ----------------------------------------------------------------------
    async def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify, then act on one delivery: "processed", "duplicate" or "ignored". Raises
        SignatureRefused (400, nothing read) or, when acting failed, the error (5xx: nothing was
        committed, and Stripe delivers it again). Counted by type (those billing acts on, by
        name) and outcome."""
        secrets = [secret.get_secret_value() for secret in self.config.webhook_secrets]
        try:
            event = verified_event(payload, signature, secrets)
        except SignatureRefused:
            self.metrics.stripe_events.labels("unverified", "refused").inc()
            raise
        outcome = "failed"
        try:
            outcome = await self._act_on(event)
            return outcome
        finally:
            self.metrics.stripe_events.labels(event["type"] if event["type"] in HANDLED else "other", outcome).inc()

    async def _act_on(self, event: dict) -> str:
        event_id, kind, obj = event["id"], event["type"], event["data"]["object"]
        if await self._seen(event_id):
            return "duplicate"
        subscription_id = _subscription_of(kind, obj)
        facts = read_subscription(await self.stripe.subscription(subscription_id)) if subscription_id else None
        hint = _uuid(obj.get("client_reference_id")) if kind == CHECKOUT_COMPLETED else None
        async with self.sessions() as session:
            session.add(WebhookEvent(source="stripe", event_id=event_id[:255], event_type=kind[:100],
                                     processed_at=utcnow()))
            try:
                await session.flush()
            except IntegrityError:
                return "duplicate"  # the same event, delivered again at the same moment
            owner = await self._owner(session, facts, hint) if facts else None
            if owner is None:
                if kind in HANDLED:
                    log.warning("stripe event for no known user", event_id=event_id, type=kind)
                outcome = "ignored"
            else:
                if kind == CHECKOUT_COMPLETED and facts.customer:
                    await _link_customer(session, owner, facts.customer)
                await self._record(session, owner, facts, cause=event_id, actor="stripe", event=kind)
                outcome = "processed"
            try:
                await session.commit()
            except IntegrityError:
                return "duplicate"
        self.wake()
        return outcome

    # -- reconciliation with Stripe ---------------------------------------------------------------
    async def sync_once(self) -> int:
        """Read again from Stripe every subscription that can still change, and the subscriptions
        of every customer whose assistant waits for payment (a lost checkout webhook); correct and
        log what drifted. How many subscriptions were read."""
        async with self.sessions() as session:
            open_rows = list(await session.scalars(select(Subscription).where(Subscription.status.not_in(FINAL))))
            waiting = list(await session.execute(
                select(User.id, User.stripe_customer_id).where(
                    User.stripe_customer_id.is_not(None),
                    User.id.in_(select(Instance.user_id).where(Instance.status == Status.AWAITING_PAYMENT)))))
        seen: set[str] = set()
        read = 0
        for row in open_rows:
            facts = read_subscription(await self.stripe.subscription(row.stripe_subscription_id))
            seen.add(facts.id)
            read += 1
            await self._apply([facts], cause=f"sync-{uuid.uuid4()}", actor="sync", owner=row.user_id)
        for user_id, customer in waiting:
            for obj in await self.stripe.subscriptions_of(customer):
                facts = read_subscription(obj)
                if facts.id in seen:
                    continue
                read += 1
                await self._apply([facts], cause=f"sync-{uuid.uuid4()}", actor="sync", owner=user_id)
        return read

    # -- the one way a subscription's change is written ------------------------------------------
    async def _apply(self, facts: Sequence[StripeSubscription], *, cause: str, actor: str, owner: uuid.UUID,
                     effects: bool = True, told: bool = False) -> None:
        async with self.sessions() as session:
            for one in facts:
                await self._record(session, owner, one, cause=cause, actor=actor, effects=effects, told=told)
            await session.commit()
        self.wake()

    async def _record(self, session: AsyncSession, owner: uuid.UUID, facts: StripeSubscription, *, cause: str,
                      actor: str, event: str | None = None, effects: bool = True, told: bool = False) -> None:
        change = await record(session, owner, facts, self.plans)
        queued = plan_effects(session, change, self.plans, cause=cause, told=told,
                              retention_days=self.config.data_retention_days) if effects else []
        if change.drift or queued:
            details: dict[str, Any] = {"subscription": facts.id, "status": facts.status, "plan": change.after.plan,
                                       "changed": change.drift, "effects": queued, "cause": cause}
            if event:
                details["event"] = event
            audit.record(session, actor=actor, action="billing.subscription", user_id=owner, details=details)
            if actor == "sync" and change.drift:
                log.warning("billing drift corrected from Stripe", user_id=str(owner), subscription=facts.id,
                            changed=change.drift)

    # -- helpers ----------------------------------------------------------------------------------
    async def _customer(self, user: User) -> str:
        """The user's Stripe customer, made once (its key is the user's id, so two at once make one)."""
        async with self.sessions() as session:
            row = await session.get(User, user.id)
            if row is None:
                raise NotFound("No such account.")
            if row.stripe_customer_id:
                return row.stripe_customer_id
            email, name = row.email, row.telegram_username
        customer = await self.stripe.create_customer(user_id=str(user.id), email=email, name=name)
        async with self.sessions() as session:
            await _link_customer(session, user.id, customer)
            await session.commit()
        return customer

    async def _current(self, user: User) -> Subscription:
        async with self.sessions() as session:
            rows = await rows_of(session, user.id)
        row = _deciding(rows, standing_of(rows))
        if row is None or row.status not in ENTITLED:
            raise Conflict("You have no active subscription: choose a plan first.")
        return row

    async def _owner(self, session: AsyncSession, facts: StripeSubscription, hint: uuid.UUID | None) -> uuid.UUID | None:
        for candidate in (facts.user_id, hint):
            if candidate is not None and await session.get(User, candidate) is not None:
                return candidate
        if facts.customer:
            return await session.scalar(select(User.id).where(User.stripe_customer_id == facts.customer))
        return None

    async def _seen(self, event_id: str) -> bool:
        async with self.sessions() as session:
            return await session.scalar(select(WebhookEvent.id).where(
                WebhookEvent.source == "stripe", WebhookEvent.event_id == event_id)) is not None

    async def _audit(self, user_id: uuid.UUID, action: str, details: dict[str, Any]) -> None:
        async with self.sessions() as session:
            audit.record(session, actor="user", action=action, user_id=user_id, details=details)
            await session.commit()


def _deciding(rows: list[Subscription], standing) -> Subscription | None:
    ordered = sorted(rows, key=lambda row: row.created_at, reverse=True)
    return next((row for row in ordered if row.plan == standing.plan and row.status == standing.status), None)


def _subscription_of(kind: str, obj: dict[str, Any]) -> str | None:
    """The subscription an event is about, whichever object it carries (both invoice layouts)."""
    if kind in SUBSCRIPTION_EVENTS:
        return obj.get("id")
    if kind == CHECKOUT_COMPLETED:
        return obj.get("subscription") if obj.get("mode") in (None, "subscription") else None
    if kind in INVOICE_EVENTS:
        parent = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        return parent or obj.get("subscription")
    return None


async def _link_customer(session: AsyncSession, user_id: uuid.UUID, customer: str) -> None:
    """Record the user's Stripe customer unless they have one (the first one made stays)."""
    await session.execute(update(User).where(User.id == user_id, User.stripe_customer_id.is_(None))
                          .values(stripe_customer_id=customer).execution_options(synchronize_session=False))


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def metered_changes(items: tuple[tuple[str, str | None], ...], wanted: str | None) -> list[dict[str, Any]]:
    """What a plan change does to the subscription's metered items so that it bills overage on
    `wanted` (the new plan's overage_price), or on nothing: the first is swapped to it (or one
    added), any other removed."""
    changes: list[dict[str, Any]] = []
    for n, (item_id, price) in enumerate(items):
        if n == 0 and wanted:
            if price != wanted:
                changes.append({"id": item_id, "price": wanted})
        else:
            changes.append({"id": item_id, "deleted": True})
    if wanted and not items:
        changes.append({"price": wanted})
    return changes
