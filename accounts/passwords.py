"""Passwords: the rules a new one must meet, and argon2id hashes (the library's recommended
parameters), verified without telling a wrong password from a damaged hash.

Hashing takes a quarter of a second of CPU and 64 MiB, so the coroutines run it in a pool of
threads of its own, one per core (the library releases the GIL): the event loop stays free,
and no flood of logins runs more hashes at once than the machine has cores.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from db.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_hasher = PasswordHasher()
_pool = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="password-hash")


def valid_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"That password is too long ({MAX_PASSWORD_LENGTH} characters at most).",
                           field="password")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hashed_password(password: str) -> str:
    """`hash_password` in the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    """`verify_password` in the hashing pool. An account that does not exist or has no password
    (None) is checked against a dummy hash of the same parameters: it costs the same time, so
    the answer's delay does not tell whether the email has an account."""
    if password_hash is None:
        await asyncio.get_running_loop().run_in_executor(_pool, _verify_dummy, password)
        return False
    return await asyncio.get_running_loop().run_in_executor(_pool, verify_password, password_hash, password)


def _verify_dummy(password: str) -> None:
    verify_password(_dummy_hash(), password)


@functools.cache
def _dummy_hash() -> str:
    """Made once, on first need, of a random password nobody knows."""
    return hash_password(secrets.token_urlsafe(32))
