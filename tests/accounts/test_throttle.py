"""The attempt budgets on their own, on a clock the test turns."""

from __future__ import annotations

import pytest

from accounts.throttle import AuthThrottle, Buckets, ThrottleConfig, address_key
from db.errors import TooManyAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_goes_through_then_one_attempt_per_share_of_the_window() -> None:
    clock = Clock()
    buckets = Buckets(3, 30, clock=clock)
    assert [buckets.take("ada") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("ada") == pytest.approx(10.0)  # 30 s / 3: the wait for the next token
    assert buckets.take("bob") == 0.0  # every key has its own
    clock.now += 4
    assert buckets.take("ada") == pytest.approx(6.0)  # a refused attempt spends nothing
    clock.now += 6
    assert buckets.take("ada") == 0.0
    assert buckets.take("ada") == pytest.approx(10.0)


def test_an_attempt_given_back_does_not_count() -> None:
    buckets = Buckets(2, 60, clock=Clock())
    for _ in range(5):
        assert buckets.take("ada") == 0.0
        buckets.give_back("ada")
    assert buckets.take("ada") == buckets.take("ada") == 0.0
    assert buckets.take("ada") > 0


def test_memory_stays_bounded_whatever_keys_arrive() -> None:
    clock = Clock()
    buckets = Buckets(5, 60, max_keys=100, clock=clock)
    for number in range(10_000):
        buckets.take(f"key-{number}")
    assert len(buckets) == 100  # the least recently used went
    assert buckets.take("key-9999") == 0.0  # the newest are still counted...
    assert [buckets.take("key-9999") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("key-9999") > 0

    clock.now += 60  # ...and refilled buckets are dropped as they are met
    for number in range(60):
        buckets.take(f"late-{number}")
        buckets.give_back(f"late-{number}")  # full again at once: not kept
    assert len(buckets) == 0


def test_the_two_budgets_of_login_and_registration() -> None:
    throttle = AuthThrottle(ThrottleConfig(window_s=60, failures_per_account=2, attempts_per_address=3),
                            clock=Clock())
    throttle.attempt_on("ada@example.com")
    throttle.attempt_on("ada@example.com")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.attempt_on("ada@example.com")
    assert refused.value.retry_after_s == 30 and refused.value.code == "too_many_attempts"
    throttle.forgive("ada@example.com")  # that one succeeded after all
    throttle.attempt_on("ada@example.com")

    for _ in range(3):
        throttle.attempt_from("203.0.113.7")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.attempt_from("203.0.113.7")
    assert refused.value.retry_after_s == 20
    assert "203.0.113.7" not in refused.value.message and "address" not in refused.value.message
    throttle.attempt_from("203.0.113.8")
    throttle.attempt_from(None)  # no address known: nothing to count it by


def test_an_ipv6_client_is_counted_by_its_slash_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.1") == "192.0.2.1"
    throttle = AuthThrottle(ThrottleConfig(attempts_per_address=1), clock=Clock())
    throttle.attempt_from("2001:db8:1:2::1")
    with pytest.raises(TooManyAttempts):
        throttle.attempt_from("2001:db8:1:2::2")
