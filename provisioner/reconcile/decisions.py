"""What to do about one instance: pure functions of (desired, observed, now), table-tested.

Desired state comes from the row's status alone; observed state from one `list_all` call to the
runtime. Nothing here does I/O, so every case is a row in a test table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from db.status import AT_REST, Status

MAX_FAILURES = 5  # crashes and failed restarts in a row before the instance goes to `error`
HEALTHY_RESET = timedelta(minutes=10)  # this long ready again and the failure streak starts over
NOT_READY_GRACE = timedelta(seconds=60)  # live but not ready this long: tell the owner, once



class Act(StrEnum):
    NOTHING = "nothing"  # as it should be
    BUSY = "busy"  # an action holds the instance's lease: leave it alone
    PROBE = "probe"  # runs as recorded: check its health
    ADOPT = "adopt"  # a gateway runs that the row does not record as running: take it over
    START = "start"  # should run and does not: first attempt, or its backoff has passed
    WAIT = "wait"  # should run; waiting for its backoff to pass
    CRASHED = "crashed"  # was running and is gone: count a failure, schedule a restart
    STOP = "stop"  # runs and should not
    FINISH_DELETE = "finish_delete"  # a delete was cut short: finish it
    STOP_ORPHAN = "stop_orphan"  # runs with no row at all


@dataclass(frozen=True)
class Desired:
    status: str
    lease_busy: bool = False
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Seen:
    up: bool  # a gateway runs for the instance (GatewayState.UP)
    recorded: bool = False  # the gateway that runs is the one the row's runtime state names


def decide(desired: Desired | None, seen: Seen, now: datetime) -> Act:
    if desired is None:
        return Act.STOP_ORPHAN if seen.up else Act.NOTHING
    if desired.lease_busy:
        return Act.BUSY
    if desired.status == Status.DELETING:
        return Act.FINISH_DELETE
    if desired.status in AT_REST:
        return Act.STOP if seen.up else Act.NOTHING
    # `running`, or `provisioning` (a transition is never trusted: drive it from what runs)
    if seen.up:
        return Act.PROBE if desired.status == Status.RUNNING and seen.recorded else Act.ADOPT
    if desired.status == Status.RUNNING:
        return Act.CRASHED
    if desired.next_attempt_at is not None and desired.next_attempt_at > now:
        return Act.WAIT
    return Act.START


@dataclass(frozen=True)
class Backoff:
    base_s: float
    max_s: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row: base, doubling, capped."""
        return min(self.max_s, self.base_s * 2 ** max(failures - 1, 0))


@dataclass(frozen=True)
class AfterFailure:
    streak: int
    next_attempt_at: datetime | None  # None: give up, the instance goes to `error`

    @property
    def gave_up(self) -> bool:
        return self.next_attempt_at is None


def after_failure(streak: int, now: datetime, backoff: Backoff) -> AfterFailure:
    failures = streak + 1
    if failures >= MAX_FAILURES:
        return AfterFailure(failures, None)
    return AfterFailure(failures, now + timedelta(seconds=backoff.delay(failures)))


def streak_survives(streak: int, running_since: datetime | None, now: datetime) -> bool:
    """False once the instance has been ready long enough for past failures to be forgotten."""
    return streak > 0 and not (running_since is not None and now - running_since >= HEALTHY_RESET)


class Verdict(StrEnum):
    HEALTHY = "healthy"  # live and ready
    NOT_READY = "not_ready"  # first seen not ready, or not for long: remember since when
    TELL_OWNER = "tell_owner"  # live, not ready past the grace: the owner is told, once
    HUNG = "hung"  # not even live past the grace: handled like a crash
    UNCHANGED = "unchanged"  # still not ready, already dealt with


def health_verdict(live: bool, ready: bool, not_ready_since: datetime | None, told: bool, now: datetime,
                   grace: timedelta = NOT_READY_GRACE) -> Verdict:
    if live and ready:
        return Verdict.HEALTHY
    if not_ready_since is None:
        return Verdict.NOT_READY
    if now - not_ready_since < grace:
        return Verdict.UNCHANGED
    if not live:
        return Verdict.HUNG
    return Verdict.UNCHANGED if told else Verdict.TELL_OWNER
