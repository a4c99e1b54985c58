"""The reconciler's decisions as tables: (desired, observed, now) -> action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.reconcile.decisions import (
    MAX_FAILURES,
    Act,
    Backoff,
    Desired,
    Seen,
    Verdict,
    after_failure,
    decide,
    health_verdict,
    streak_survives,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
EARLIER = NOW - timedelta(seconds=30)

RUNS_AS_RECORDED = Seen(up=True, recorded=True)
RUNS_UNRECORDED = Seen(up=True, recorded=False)
GONE = Seen(up=False)


@pytest.mark.parametrize(
    ("desired", "seen", "act"),
    [
        # running: as recorded -> probe; another gateway -> adopt; gone -> crash handling
        (Desired("running"), RUNS_AS_RECORDED, Act.PROBE),
        (Desired("running"), RUNS_UNRECORDED, Act.ADOPT),
        (Desired("running"), GONE, Act.CRASHED),
        # provisioning is never trusted: drive it from what runs
        (Desired("provisioning"), RUNS_AS_RECORDED, Act.ADOPT),
        (Desired("provisioning"), RUNS_UNRECORDED, Act.ADOPT),
        (Desired("provisioning"), GONE, Act.START),
        (Desired("provisioning", next_attempt_at=EARLIER), GONE, Act.START),
        (Desired("provisioning", next_attempt_at=NOW), GONE, Act.START),
        (Desired("provisioning", next_attempt_at=LATER), GONE, Act.WAIT),
        # at rest: nothing may run
        *[(Desired(status), RUNS_AS_RECORDED, Act.STOP) for status in ("stopped", "error", "awaiting_payment", "suspended")],
        *[(Desired(status), RUNS_UNRECORDED, Act.STOP) for status in ("stopped", "error", "awaiting_payment", "suspended")],
        *[(Desired(status), GONE, Act.NOTHING) for status in ("stopped", "error", "awaiting_payment", "suspended")],
        # a delete cut short is finished, whatever runs
        (Desired("deleting"), RUNS_AS_RECORDED, Act.FINISH_DELETE),
        (Desired("deleting"), GONE, Act.FINISH_DELETE),
        # someone holds the lease: hands off, whatever the state
        *[(Desired(status, lease_busy=True), seen, Act.BUSY)
          for status in ("running", "provisioning", "stopped", "deleting") for seen in (RUNS_AS_RECORDED, GONE)],
        # no row at all
        (None, RUNS_UNRECORDED, Act.STOP_ORPHAN),
        (None, GONE, Act.NOTHING),
    ],
)
def test_decide(desired: Desired | None, seen: Seen, act: Act) -> None:
    assert decide(desired, seen, NOW) is act


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 300), (20, 300)],
)
def test_backoff_doubles_from_base_up_to_the_cap(failures: int, delay: float) -> None:
    assert Backoff(10, 300).delay(failures) == delay


def test_failures_in_a_row_back_off_then_give_up() -> None:
    backoff = Backoff(1, 60)
    streak, waits = 0, []
    while True:
        step = after_failure(streak, NOW, backoff)
        streak = step.streak
        if step.gave_up:
            break
        waits.append((step.next_attempt_at - NOW).total_seconds())
    assert streak == MAX_FAILURES
    assert waits == [1, 2, 4, 8]  # one crash, then four restarts that failed too


@pytest.mark.parametrize(
    ("streak", "running_since", "survives"),
    [
        (0, NOW - timedelta(hours=1), False),  # nothing to forget
        (3, None, True),  # not ready yet
        (3, NOW - timedelta(minutes=9, seconds=59), True),
        (3, NOW - timedelta(minutes=10), False),  # ten minutes healthy: forgotten
    ],
)
def test_the_streak_resets_after_ten_minutes_healthy(streak, running_since, survives) -> None:
    assert streak_survives(streak, running_since, NOW) is survives


GRACE = timedelta(seconds=60)


@pytest.mark.parametrize(
    ("live", "ready", "since", "told", "verdict"),
    [
        (True, True, None, False, Verdict.HEALTHY),
        (True, True, NOW - timedelta(hours=1), True, Verdict.HEALTHY),  # recovered on its own
        (True, False, None, False, Verdict.NOT_READY),  # first sight: remember since when
        (False, False, None, False, Verdict.NOT_READY),
        (True, False, NOW - timedelta(seconds=59), False, Verdict.UNCHANGED),  # within the grace
        (True, False, NOW - timedelta(seconds=61), False, Verdict.TELL_OWNER),  # told once...
        (True, False, NOW - timedelta(seconds=61), True, Verdict.UNCHANGED),  # ...and not again
        (False, False, NOW - timedelta(seconds=61), False, Verdict.HUNG),  # not even live: restart
        (False, False, NOW - timedelta(seconds=61), True, Verdict.HUNG),
    ],
)
def test_health_verdicts(live, ready, since, told, verdict) -> None:
    assert health_verdict(live, ready, since, told, NOW, GRACE) is verdict
