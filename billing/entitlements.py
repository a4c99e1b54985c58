"""Entitlements from the subscription (the provisioner's Entitlements interface, answered by
billing): a subscriber gets their plan's instances and resources; someone without one may set
up an assistant that waits for payment (the default plan's count of them), and run nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.plans import Plans
from billing.subscriptions import rows_of, standing_of
from db.models import User
from provisioner.entitlements import Allowance


class PlanEntitlements:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], plans: Plans) -> None:
        self.sessions = sessions
        self.plans = plans

    async def allowance(self, user: User) -> Allowance:
        async with self.sessions() as session:
            standing = standing_of(await rows_of(session, user.id))
        plan = self.plans.get(standing.plan) if standing.entitled and standing.plan else None
        if plan is None:
            default = self.plans.get(self.plans.default)
            # Before paying, the platform's key is offered if a plan includes usage on it (the
            # plan step then offers only those plans).
            included = max((plan.included_usage_usd for plan in self.plans), default=0.0)
            return Allowance(default.instances, default.memory_mb, default.cpus, payment_required=True,
                             included_usage_usd=included or None, backup_every_hours=default.backup_every_hours,
                             backups_kept=default.backups_kept)
        return Allowance(plan.instances, plan.memory_mb, plan.cpus, plan_name=plan.name,
                         spend_cap_ceiling_usd=plan.spend_cap_ceiling_usd or None,
                         included_usage_usd=plan.included_usage_usd or None, overage_billed=plan.bills_overage,
                         backup_every_hours=plan.backup_every_hours, backups_kept=plan.backups_kept)
