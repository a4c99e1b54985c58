"""The read cache in the app's requests (db/read_cache.py): a token's owner and an instance's
view are read from the database once, not per request, and every way a token stops working
takes effect on the very next request, with the cache warm for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

PASSWORD = "correct horse battery"
KEY = "sk-proj-cache0cache0cache0cache0cache0"


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        yield api
    await runtime.close()


@contextmanager
def statements_sent(api: Api) -> Iterator[list[str]]:
    """Every SQL statement the platform's engine sends meanwhile."""
    sent: list[str] = []
    engine = api.platform.engine.sync_engine

    def noted(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", noted)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", noted)


async def _two_sessions(api: Api, email: str = "ada@example.com") -> tuple[str, str]:
    status, registered = await api.call("POST", "/api/auth/register", {"email": email, "password": PASSWORD})
    assert status == 201, registered
    status, second = await api.call("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, second
    for token in (registered["token"], second["token"]):
        assert (await api.call("GET", "/api/me", token=token))[0] == 200  # the cache is warm for both
    return registered["token"], second["token"]


async def test_repeated_requests_read_the_token_and_the_instance_once(api: Api) -> None:
    api.token, _ = await _two_sessions(api)
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": KEY})
    assert status == 202, created
    await api.wait_status(created["id"], "running", timeout=60)
    await api.call("GET", f"/api/instances/{created['id']}")
    with statements_sent(api) as sent:
        answers = [await api.call("GET", f"/api/instances/{created['id']}") for _ in range(5)]
    assert {status for status, _ in answers} == {200} and answers[-1][1]["status"] == "running"
    reads = [statement for statement in sent if "api_tokens" in statement or "FROM instances" in statement]
    assert reads == []


async def test_a_status_change_shows_in_the_next_answer(api: Api) -> None:
    api.token, _ = await _two_sessions(api)
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": KEY})
    assert status == 202, created
    await api.wait_status(created["id"], "running", timeout=60)
    assert (await api.call("GET", f"/api/instances/{created['id']}"))[1]["status"] == "running"
    assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
    seen = set()
    for _ in range(200):  # every answer while it stops, none of them older than the last write
        seen.add((await api.call("GET", f"/api/instances/{created['id']}"))[1]["status"])
        if "stopped" in seen:
            break
    assert "stopped" in seen


async def test_logging_out_ends_the_token_at_once(api: Api) -> None:
    first, second = await _two_sessions(api)
    assert (await api.call("POST", "/api/auth/logout", token=first))[0] == 204
    assert (await api.call("GET", "/api/me", token=first))[0] == 401
    assert (await api.call("GET", "/api/me", token=second))[0] == 200


async def test_a_revoked_api_token_fails_at_once(api: Api) -> None:
    login, _ = await _two_sessions(api)
    status, created = await api.call("POST", "/api/tokens", {"name": "script"}, token=login)
    assert status == 201, created
    assert (await api.call("GET", "/api/instances", token=created["token"]))[0] == 200
    assert (await api.call("DELETE", f"/api/tokens/{created['id']}", token=login))[0] == 204
    assert (await api.call("GET", "/api/instances", token=created["token"]))[0] == 401


async def test_a_new_password_ends_the_other_sessions_at_once(api: Api) -> None:
    mine, other = await _two_sessions(api)
    change = {"password": "a whole new password", "current_password": PASSWORD}
    assert (await api.call("PATCH", "/api/me", change, token=mine))[0] == 200
    assert (await api.call("GET", "/api/me", token=other))[0] == 401
    assert (await api.call("GET", "/api/me", token=mine))[0] == 200


async def test_a_changed_email_shows_at_once(api: Api) -> None:
    mine, _ = await _two_sessions(api)
    assert (await api.call("PATCH", "/api/me", {"email": "new@example.com", "current_password": PASSWORD},
                           token=mine))[0] == 200
    assert (await api.call("GET", "/api/me", token=mine))[1]["email"] == "new@example.com"


async def test_signing_out_everywhere_ends_every_session_at_once(api: Api) -> None:
    first, second = await _two_sessions(api)
    user = await api.platform.accounts.user_for_token(first)
    assert await api.platform.accounts.end_all_sessions(user) == 2
    for token in (first, second):
        assert (await api.call("GET", "/api/me", token=token))[0] == 401


async def test_a_deleted_account_signs_in_nowhere_at_once(api: Api) -> None:
    first, second = await _two_sessions(api)
    assert (await api.call("DELETE", "/api/me", {"password": PASSWORD}, token=first))[0] == 204
    for token in (first, second):
        assert (await api.call("GET", "/api/me", token=token))[0] == 401
