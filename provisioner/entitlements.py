"""Entitlements: what a user may run. Operator defaults when billing is off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from db.models import User


@dataclass(frozen=True)
class Allowance:
    max_instances: int
    memory_mb: int  # per instance
    cpus: float  # per instance


class Entitlements(Protocol):
    async def allowance(self, user: User) -> Allowance: ...


@dataclass(frozen=True)
class OperatorDefaults:
    """The operator's figures (CLAWFLEET_MAX_INSTANCES_PER_USER, _INSTANCE_MEMORY_MB, _INSTANCE_CPUS)."""

    max_instances_per_user: int
    memory_mb: int = 1536
    cpus: float = 1.0

    async def allowance(self, user: User) -> Allowance:
        return Allowance(self.max_instances_per_user, self.memory_mb, self.cpus)
