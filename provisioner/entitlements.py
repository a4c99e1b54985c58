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


# An idle gateway takes about 0.9-1.1 GB (lean profile, measured); leave room for a turn.
DEFAULT_INSTANCE_MEMORY_MB = 1536
DEFAULT_INSTANCE_CPUS = 1.0


@dataclass(frozen=True)
class OperatorDefaults:
    max_instances_per_user: int
    memory_mb: int = DEFAULT_INSTANCE_MEMORY_MB
    cpus: float = DEFAULT_INSTANCE_CPUS

    async def allowance(self, user: User) -> Allowance:
        return Allowance(self.max_instances_per_user, self.memory_mb, self.cpus)
