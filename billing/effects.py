"""What a change of a user's subscriptions causes, and how each effect is carried out.

`plan_effects` turns a Change (what the user was entitled to before and after) into outbox
effects; `EffectHandlers` carries them out through the instance service and the Notifier. Every
handler is idempotent: run twice, it does what is still to do and nothing more."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billing.outbox import Handler, enqueue
from billing.plans import Plans
from billing.subscriptions import Change
from db.models import OutboxEffect
from provisioner.notify import Notifier, Offer
from provisioner.service import InstanceService

START_PAID, SUSPEND, NOTIFY, PLAN_CHANGED = "start_paid", "suspend", "notify", "plan_changed"


def plan_effects(session: AsyncSession, change: Change, plans: Plans, *, cause: str, retention_days: int,
                 told: bool = False) -> list[str]:
    """Queue in `session` what `change` calls for; the kinds queued (for the audit). `told`: the
    owner made the change from a front end, which showed them what follows (no notice again)."""
    before, after = change.before, change.after
    queued: list[str] = []

    def add(kind: str, **payload: object) -> None:
        enqueue(session, key=f"{cause}:{change.user_id}:{kind}:{len(queued)}", kind=kind, user_id=change.user_id,
                payload=payload)
        queued.append(kind)

    plan = plans.get(after.plan) if after.plan else None
    if after.entitled and not before.entitled:
        add(START_PAID, plan=after.plan)  # tells the owner too, once it knows whether anything starts
    elif before.entitled and not after.entitled:
        add(SUSPEND, reason="Your subscription has ended. Subscribe again to bring your assistant back with "
                            "its data.")
        add(NOTIFY, text=f"Your subscription has ended, so your assistant is stopped. Its data is kept for "
                         f"{retention_days} days: subscribe again (/billing) and it comes back as it was.",
            offers=[("Choose a plan", "billing")])
    if after.entitled and after.past_due and not before.past_due:
        add(NOTIFY, text="Your last payment did not go through. Your assistant keeps running while Stripe tries "
                         "again; please update your card (/billing).", offers=[("Update payment", "billing")])
    elif before.entitled and before.past_due and after.entitled and not after.past_due:
        add(NOTIFY, text="Your payment went through. Thank you!")
    if before.entitled and after.entitled and before.plan != after.plan and plan is not None:
        add(PLAN_CHANGED, plan=plan.id, told=told)
    return queued


class EffectHandlers:
    def __init__(self, instances: InstanceService, notifier: Notifier, plans: Plans) -> None:
        self.instances = instances
        self.notifier = notifier
        self.plans = plans

    def table(self) -> dict[str, Handler]:
        return {START_PAID: self.start_paid, SUSPEND: self.suspend, NOTIFY: self.notify,
                PLAN_CHANGED: self.plan_changed}

    async def start_paid(self, effect: OutboxEffect) -> None:
        started = await self.instances.start_paid(effect.user_id)
        plan = self.plans.get((effect.payload or {}).get("plan") or "")
        thanks = f"Your {plan.name if plan else 'new'} plan is active. Thank you!"
        if started:
            await self.notifier.notify(effect.user_id, f"{thanks} Your assistant is starting; I will show you when "
                                                       "it is ready.")
        elif not effect.attempts:  # a retry after a later failure must not say it twice
            await self.notifier.notify(effect.user_id, f"{thanks} Send /start to set up your assistant.")
        for instance_id in started:
            await self.notifier.follow(effect.user_id, instance_id, "Deploying your assistant")

    async def suspend(self, effect: OutboxEffect) -> None:
        await self.instances.suspend_unpaid(effect.user_id, (effect.payload or {}).get("reason") or "Billing stopped it.")

    async def notify(self, effect: OutboxEffect) -> None:
        offers = [Offer(label, action) for label, action in (effect.payload or {}).get("offers") or ()]
        await self.notifier.notify(effect.user_id, effect.payload["text"], offers)

    async def plan_changed(self, effect: OutboxEffect) -> None:
        """New resources apply at the next start: offer a restart to what runs; on a downgrade below
        what runs, ask which to stop (nothing is stopped until the owner answers)."""
        plan = self.plans.get((effect.payload or {}).get("plan", ""))
        if plan is None or (effect.payload or {}).get("told"):
            return
        running = await self.instances.running_of(effect.user_id)
        if len(running) > plan.instances:
            await self.notifier.notify(
                effect.user_id,
                f"Your plan is now {plan.name}, which runs {plan.instances} assistant"
                f"{'' if plan.instances == 1 else 's'}; {len(running)} of yours run. Choose which to stop: "
                "nothing stops until you do.",
                [Offer(f"Stop {label}", "stop", instance_id) for instance_id, label in running])
            return
        if running:
            await self.notifier.notify(
                effect.user_id,
                f"Your plan is now {plan.name}: {plan.memory_mb} MB and {plan.cpus:g} CPU per assistant, from its "
                "next restart.",
                [Offer(f"Restart {label}", "restart", instance_id) for instance_id, label in running])
