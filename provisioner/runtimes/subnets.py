"""Per-instance network subnets from ClawFleet's own pool of small subnets.

Docker's default address pools hand out /16s and /20s and run out at about 31 bridge networks;
one instance needs a handful of addresses, so a /28 each from a private /16 gives 4,096."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

DEFAULT_POOL = "10.213.0.0/16"
DEFAULT_PREFIX = 28


class PoolExhausted(Exception):
    pass


def next_subnet(pool: str, prefix: int, taken: Iterable[str]) -> str:
    """The first /prefix of `pool` that overlaps none of the subnets `taken`."""
    network = ipaddress.ip_network(pool)
    used = [ipaddress.ip_network(subnet) for subnet in taken]
    for candidate in network.subnets(new_prefix=prefix):
        if not any(candidate.overlaps(other) for other in used):
            return str(candidate)
    raise PoolExhausted(f"no free /{prefix} left in {pool}: every instance network uses one")
