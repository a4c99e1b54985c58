"""Entitlements: what a user may run. Operator defaults when billing is off; billing's answer
(billing.entitlements, from the user's subscription) when it is on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from db.models import User


@dataclass(frozen=True)
class Allowance:
    max_instances: int
    memory_mb: int  # per instance
    cpus: float  # per instance
    # No subscription that pays for running: a new instance waits in `awaiting_payment` (up to
    # max_instances of them) and nothing at rest may start.
    payment_required: bool = False
    plan_name: str | None = None  # what refusals name ("Your Personal plan allows…"); None: no plan
    spend_cap_ceiling_usd: float | None = None  # the most a monthly model spending cap may be; None: no ceiling
    # Model usage a month on the platform's keys (CLAWFLEET_PLATFORM_KEYS) included; None: the
    # platform's key is not offered to this user
    included_usage_usd: float | None = None
    # Past the included usage, calls on the platform's key go on and are billed (plan overage
    # "bill"), up to the cap; False: they stop.
    overage_billed: bool = False
    # Instance backups: every how many hours each running instance is backed up (0: never on a
    # schedule), and how many backups each instance keeps, the newest.
    backup_every_hours: int = 24
    backups_kept: int = 7


def limit_message(allowance: Allowance) -> str:
    """Why one more instance is refused: the plan's name and its limit."""
    count = allowance.max_instances
    if allowance.plan_name:
        return (f"Your {allowance.plan_name} plan allows {count} assistant{'' if count == 1 else 's'}; "
                "delete one or change your plan to add more.")
    return f"Your plan allows {count} instance(s); delete one or upgrade to add more."


class Entitlements(Protocol):
    async def allowance(self, user: User) -> Allowance: ...


@dataclass(frozen=True)
class OperatorDefaults:
    """The operator's figures (CLAWFLEET_MAX_INSTANCES_PER_USER, _INSTANCE_MEMORY_MB, _INSTANCE_CPUS),
    who may use the operator's own model keys, up to how much a month
    (CLAWFLEET_PLATFORM_KEY_USERS, CLAWFLEET_PLATFORM_KEY_USD), and the backup schedule
    (CLAWFLEET_INSTANCE_BACKUP_EVERY_HOURS, CLAWFLEET_INSTANCE_BACKUPS_KEPT)."""

    max_instances_per_user: int
    memory_mb: int = 1536
    cpus: float = 1.0
    platform_key_usd: float = 0.0
    platform_key_users: frozenset[int | str] = frozenset()  # Telegram ids and (verified) emails
    backup_every_hours: int = 24
    backups_kept: int = 7

    async def allowance(self, user: User) -> Allowance:
        return Allowance(self.max_instances_per_user, self.memory_mb, self.cpus,
                         included_usage_usd=self.platform_key_usd or None if self._on_platform_key(user) else None,
                         backup_every_hours=self.backup_every_hours, backups_kept=self.backups_kept)

    def _on_platform_key(self, user: User) -> bool:
        if user.telegram_user_id is not None and user.telegram_user_id in self.platform_key_users:
            return True
        return bool(user.email and user.email_verified_at and user.email.lower() in self.platform_key_users)
