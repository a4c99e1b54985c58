"""How many login and registration attempts are let through, per account and per client address.

Each key (an email, an address) has a token bucket: it holds up to `limit` attempts and refills
evenly over `window_s`, so a burst of `limit` goes through, then one attempt per
`window_s / limit`. An attempt takes its token before any password is hashed, so attempts made
at once cannot all slip under the limit; one that turns out not to count (a successful login, a
new account) gives its account token back, so an owner who logs in is never locked out by it.

The buckets live in this process's memory: each platform process counts on its own. A full
bucket is the same as none, so those are dropped as they are met, and at most `max_keys` are
held (the least recently used go first): memory stays bounded whatever keys arrive.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from db.errors import TooManyAttempts

MAX_KEYS = 100_000


class Buckets:
    """Token buckets by key, `limit` tokens each, refilled over `window_s`."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be at least 1, window_s above 0")
        self.limit, self.rate, self.max_keys, self.clock = limit, limit / window_s, max_keys, clock
        self._held: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, as of)

    def take(self, key: str) -> float:
        """Spends one token of `key`: 0.0 when it had one, else the seconds until it will have
        one (and nothing is spent)."""
        now = self.clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            return (1 - tokens) / self.rate
        self._keep(key, tokens - 1, now)
        return 0.0

    def give_back(self, key: str) -> None:
        """Returns a token `take` spent, for an attempt that turned out not to count."""
        now = self.clock()
        self._keep(key, min(self.limit, self._tokens(key, now) + 1), now)

    def __len__(self) -> int:
        return len(self._held)

    def _tokens(self, key: str, now: float) -> float:
        held = self._held.get(key)
        if held is None:
            return float(self.limit)
        tokens, since = held
        return min(self.limit, tokens + (now - since) * self.rate)

    def _keep(self, key: str, tokens: float, now: float) -> None:
        if tokens >= self.limit:
            self._held.pop(key, None)
        else:
            self._held[key] = (tokens, now)
            self._held.move_to_end(key)
        self._forget_full(now)
        while len(self._held) > self.max_keys:
            self._held.popitem(last=False)

    def _forget_full(self, now: float) -> None:
        """Drops the two least recently used buckets if they have refilled: two per call keeps
        ahead of the one key a call may add."""
        for _ in range(2):
            oldest = next(iter(self._held), None)
            if oldest is None or self._tokens(oldest, now) < self.limit:
                return
            del self._held[oldest]


@dataclass(frozen=True)
class ThrottleConfig:
    window_s: float = 900
    failures_per_account: int = 10  # failed logins and registrations of a taken email, per email
    attempts_per_address: int = 60  # logins and registrations of any outcome, per client address


class AuthThrottle:
    """The budgets of login and registration: one per account (email), one per client address."""

    def __init__(self, config: ThrottleConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = Buckets(config.failures_per_account, config.window_s, clock=clock)
        self.addresses = Buckets(config.attempts_per_address, config.window_s, clock=clock)

    def attempt_from(self, address: str | None) -> None:
        """Counts an attempt from the client address (None: not known, nothing counted)."""
        if address is not None:
            _refuse_after(self.addresses.take(address_key(address)))

    def attempt_on(self, email: str) -> None:
        """Counts an attempt on the account (an email), as failed until `forgive` says otherwise."""
        _refuse_after(self.accounts.take(email))

    def forgive(self, email: str) -> None:
        """The attempt on the account succeeded: it does not count."""
        self.accounts.give_back(email)


def address_key(address: str) -> str:
    """What one client is counted by: its IPv4 address, or the /64 of an IPv6 one (a host
    usually holds a whole /64, and could otherwise take a new address per attempt)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _refuse_after(wait_s: float) -> None:
    if wait_s > 0:
        raise TooManyAttempts("Too many attempts. Please wait a while and try again.",
                              retry_after_s=max(1, math.ceil(wait_s)))
