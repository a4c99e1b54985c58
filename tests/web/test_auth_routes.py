"""Login and registration over the real app on loopback: the platform keeps answering while
passwords are hashed, and attempts beyond the budgets answer 429."""

from __future__ import annotations

import asyncio
import time

from tests.support.api_client import Api, running_api
from tests.support.web_client import serving_pages as serving

PASSWORD = "correct horse battery"


def _login(api: Api, email: str, password: str = PASSWORD):
    return api.call("POST", "/api/auth/login", {"email": email, "password": password})


async def _attempt(api: Api, path: str, email: str, *, forwarded_for: str | None = None) -> tuple[int, dict, dict]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with api.http.post(api.url(path), json={"email": email, "password": "wrong password!"},
                             headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


async def test_healthz_answers_while_twenty_logins_hash_their_passwords(settings_for, sessions) -> None:
    # attempts in flight hold their account's budget until they succeed: room for twenty at once
    async with serving(settings_for(auth_failures_per_account=20)) as api:
        await api.sign_up("ada@example.com")
        logins = [asyncio.create_task(_login(api, "ada@example.com")) for _ in range(20)]
        await asyncio.sleep(0.2)  # the logins have reached the server and are hashing
        started = time.monotonic()
        status, _ = await api.call("GET", "/healthz")
        waited = time.monotonic() - started
        still_hashing = sum(not login.done() for login in logins)
        answers = await asyncio.gather(*logins)
    assert status == 200
    assert [code for code, _ in answers] == [200] * 20
    assert still_hashing > 0  # /healthz was answered in the middle of the logins...
    assert waited < 1.0, f"/healthz took {waited:.2f} s"  # ...without waiting for them (a guard, not a speed test)


TOO_MANY = {"error": {"code": "too_many_attempts", "message": "Too many attempts. Please wait a while and try again."}}


async def test_attempts_beyond_a_budget_answer_429_with_retry_after(settings_for, sessions) -> None:
    async with serving(settings_for(auth_failures_per_account=2, auth_attempts_per_address=5)) as api:
        await api.sign_up("ada@example.com")  # the address's first attempt
        assert [(await _attempt(api, "/api/auth/login", "ada@example.com"))[0] for _ in range(2)] == [401, 401]
        status, headers, body = await _attempt(api, "/api/auth/login", "ada@example.com")
        assert (status, body) == (429, TOO_MANY)  # the account's budget
        assert 400 <= int(headers["Retry-After"]) <= 450  # whole seconds: 900 s / 2 per attempt

        assert (await _attempt(api, "/api/auth/register", "bob@example.com"))[0] == 201  # the fifth attempt
        status, headers, body = await _attempt(api, "/api/auth/login", "carol@example.com")
        assert (status, body) == (429, TOO_MANY)  # the address's budget: the same answer
        assert 150 <= int(headers["Retry-After"]) <= 180  # 900 s / 5


async def test_each_client_behind_a_trusted_proxy_has_a_budget_of_its_own(settings_for, sessions) -> None:
    async with serving(settings_for(auth_attempts_per_address=2, trusted_proxies=["127.0.0.1/32"])) as api:
        for _ in range(2):
            assert (await _attempt(api, "/api/auth/login", "a@example.com", forwarded_for="198.51.100.1"))[0] == 401
        assert (await _attempt(api, "/api/auth/login", "b@example.com", forwarded_for="198.51.100.1"))[0] == 429
        # a client cannot buy a fresh budget by writing the header itself: the proxy appends the real one
        forged = "203.0.113.99, 198.51.100.1"
        assert (await _attempt(api, "/api/auth/login", "c@example.com", forwarded_for=forged))[0] == 429
        assert (await _attempt(api, "/api/auth/login", "d@example.com", forwarded_for="198.51.100.2"))[0] == 401


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings_for, sessions) -> None:
    async with serving(settings_for(auth_attempts_per_address=2)) as api:
        for client in ("198.51.100.1", "198.51.100.2"):
            assert (await _attempt(api, "/api/auth/login", "a@example.com", forwarded_for=client))[0] == 401
        assert (await _attempt(api, "/api/auth/login", "b@example.com", forwarded_for="198.51.100.3"))[0] == 429
