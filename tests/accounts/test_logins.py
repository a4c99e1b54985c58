"""Logins and registrations against the real database, as someone guessing would try them: the
hashing happens off the event loop, and costs the same whether or not the email has an account."""

from __future__ import annotations

import threading

import argon2
import pytest

from accounts import passwords
from accounts.users import Accounts
from db.errors import AuthenticationFailed, Conflict
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
