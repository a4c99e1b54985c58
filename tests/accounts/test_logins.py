"""Logins and registrations against the real database, as someone guessing would try them: the
hashing happens off the event loop, costs the same whether or not the email has an account, and
the attempt budgets hold even for attempts made all at once."""

from __future__ import annotations

import asyncio
import threading

import argon2
import pytest

from accounts import passwords
from accounts.throttle import ThrottleConfig
from accounts.users import Accounts
from db.errors import AuthenticationFailed, Conflict, TooManyAttempts
from tests.support.builders import saved_user

PASSWORD = "correct horse battery"


class CountingHasher(argon2.PasswordHasher):
    """The real hasher, noting which hashes it verified and on which thread it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.hashed: list[str] = []
        self.verified: list[str] = []
        self.threads: set[int] = set()

    def hash(self, password, *, salt=None) -> str:
        self.threads.add(threading.get_ident())
        stored = super().hash(password, salt=salt)
        self.hashed.append(stored)
        return stored

    def verify(self, hash, password) -> bool:  # noqa: A002 - the library's own parameter name
        self.threads.add(threading.get_ident())
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", counting)
    return counting


async def test_passwords_are_hashed_outside_the_event_loop(sessions, hasher) -> None:
    accounts = Accounts(sessions)
    await accounts.register("ada@example.com", PASSWORD)
    await accounts.login("ada@example.com", PASSWORD)
    assert len(hasher.hashed) == 1 and len(hasher.verified) == 1
    assert threading.get_ident() not in hasher.threads


async def test_an_unknown_email_costs_the_same_verification_as_a_known_one(sessions, hasher) -> None:
    accounts = Accounts(sessions)
    await accounts.register("ada@example.com", PASSWORD)
    await saved_user(sessions, email="tg@example.com", password_hash=None, telegram_user_id=4242)  # no password
    [stored] = hasher.hashed

    for email in ("ada@example.com", "nobody@example.com", "tg@example.com"):
        with pytest.raises(AuthenticationFailed, match="Wrong email or password"):
            await accounts.login(email, "wrong password!")
    known, unknown, passwordless = hasher.verified
    assert known == stored
    assert unknown == passwordless != stored  # a dummy hash, made once...
    assert argon2.extract_parameters(unknown) == argon2.extract_parameters(stored)  # ...with the same cost


async def test_registering_a_taken_email_says_log_in_and_costs_a_hash_like_a_new_one(sessions, hasher) -> None:
    accounts = Accounts(sessions)
    await accounts.register("ada@example.com", PASSWORD)
    with pytest.raises(Conflict, match="log in instead") as refused:
        await accounts.register(" ADA@example.com", "another long password")
    assert refused.value.field == "email"
    assert len(hasher.hashed) == 2


async def test_failed_logins_are_counted_per_account_and_successes_are_not(sessions) -> None:
    accounts = Accounts(sessions, ThrottleConfig(window_s=900, failures_per_account=3, attempts_per_address=100))
    await accounts.register("ada@example.com", PASSWORD)
    await accounts.register("bob@example.com", PASSWORD)
    for _ in range(5):  # the owner logging in often uses none of the budget
        await accounts.login("ada@example.com", PASSWORD)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await accounts.login("Ada@example.com ", "wrong password!")
    with pytest.raises(TooManyAttempts) as refused:
        await accounts.login("ada@example.com", PASSWORD)  # the right one too, until the wait is over
    assert 280 <= refused.value.retry_after_s <= 300  # 900 s / 3, less the time the logins took
    await accounts.login("bob@example.com", PASSWORD)  # another account is not affected

    for _ in range(3):  # an email without an account has a budget just the same
        with pytest.raises(AuthenticationFailed):
            await accounts.login("nobody@example.com", "wrong password!")
    with pytest.raises(TooManyAttempts):
        await accounts.login("nobody@example.com", "wrong password!")


async def test_attempts_made_at_once_cannot_slip_under_the_limit(sessions, hasher) -> None:
    accounts = Accounts(sessions, ThrottleConfig(failures_per_account=3, attempts_per_address=100))
    await accounts.register("ada@example.com", PASSWORD)
    outcomes = await asyncio.gather(*(accounts.login("ada@example.com", f"guess number {n}") for n in range(12)),
                                    return_exceptions=True)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["AuthenticationFailed"] * 3 + ["TooManyAttempts"] * 9
    assert len(hasher.verified) == 3  # the refused ones never reached the hasher


async def test_attempts_are_counted_per_client_address_whatever_the_outcome(sessions, hasher) -> None:
    accounts = Accounts(sessions, ThrottleConfig(failures_per_account=100, attempts_per_address=4))
    await accounts.register("ada@example.com", PASSWORD, client="198.51.100.7")
    await accounts.login("ada@example.com", PASSWORD, client="198.51.100.7")
    with pytest.raises(AuthenticationFailed):
        await accounts.login("bob@example.com", "wrong password!", client="198.51.100.7")
    with pytest.raises(Conflict):
        await accounts.register("ada@example.com", PASSWORD, client="198.51.100.7")
    hashes_so_far = len(hasher.hashed) + len(hasher.verified)
    with pytest.raises(TooManyAttempts):
        await accounts.login("ada@example.com", PASSWORD, client="198.51.100.7")
    with pytest.raises(TooManyAttempts):
        await accounts.register("carol@example.com", PASSWORD, client="198.51.100.7")
    assert len(hasher.hashed) + len(hasher.verified) == hashes_so_far  # refused before any hashing
    await accounts.login("ada@example.com", PASSWORD, client="198.51.100.8")


async def test_registrations_of_a_taken_email_are_counted_against_it(sessions) -> None:
    accounts = Accounts(sessions, ThrottleConfig(failures_per_account=2, attempts_per_address=100))
    await accounts.register("ada@example.com", PASSWORD)  # a new account: not a failure
    for _ in range(2):
        with pytest.raises(Conflict):
            await accounts.register("ada@example.com", PASSWORD)
    with pytest.raises(TooManyAttempts):
        await accounts.register("ada@example.com", PASSWORD)
    await accounts.register("bob@example.com", PASSWORD)
