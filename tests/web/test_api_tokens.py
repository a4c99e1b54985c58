"""GET, POST /api/tokens and DELETE /api/tokens/{id} over the real app: tokens shown once,
stored hashed, working as bearers until revoked, and managed only by those with the right."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from accounts.api_tokens import MAX_TOKENS_PER_USER
from accounts.tokens import hash_token
from db.models import ApiToken
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from web.csrf import csrf_token

TOKEN_FIELDS = {"id", "name", "prefix", "created_at", "last_used_at", "can_manage_tokens"}


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up()
        yield api
    await runtime.close()


async def _new_token(api: Api, token: str | None = None, **body) -> tuple[int, dict]:
    return await api.call("POST", "/api/tokens", {"name": "ci deploys", **body}, token=token)


async def test_a_new_token_is_shown_once_stored_hashed_and_works_until_revoked(api: Api, sessions) -> None:
    status, created = await _new_token(api, name="  ci deploys  ")
    assert status == 201, created
    assert set(created) == TOKEN_FIELDS | {"token"}
    assert created["name"] == "ci deploys" and created["can_manage_tokens"] is False
    assert created["token"].startswith(created["prefix"]) and created["last_used_at"] is None

    async with sessions() as session:
        row = await session.get(ApiToken, uuid.UUID(created["id"]))
    assert row.kind == "api" and row.token_hash == hash_token(created["token"])
    assert created["token"] not in str(row.__dict__)

    assert (await api.call("GET", "/api/instances", token=created["token"]))[0] == 200
    status, listed = await api.call("GET", "/api/tokens")
    assert status == 200
    assert [set(token) for token in listed["tokens"]] == [TOKEN_FIELDS]  # the token itself: never again
    assert listed["tokens"][0]["id"] == created["id"] and listed["tokens"][0]["last_used_at"] is not None

    assert (await api.call("DELETE", f"/api/tokens/{created['id']}"))[0] == 204
    assert (await api.call("GET", "/api/instances", token=created["token"]))[0] == 401
    assert (await api.call("GET", "/api/tokens"))[1] == {"tokens": []}


async def test_sessions_are_not_listed_nor_revocable_as_api_tokens(api: Api, sessions) -> None:
    async with sessions() as session:
        login = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(api.token)))
    assert login.kind == "session"
    assert (await api.call("GET", "/api/tokens"))[1] == {"tokens": []}
    assert (await api.call("DELETE", f"/api/tokens/{login.id}"))[0] == 404


async def test_another_users_token_answers_404_and_keeps_working(api: Api) -> None:
    _, theirs = await _new_token(api)
    other = Api(api.server, api.http)
    await other.sign_up()
    status, answer = await other.call("DELETE", f"/api/tokens/{theirs['id']}")
    assert (status, answer["error"]["code"]) == (404, "not_found")
    assert (await api.call("GET", "/api/instances", token=theirs["token"]))[0] == 200
    assert (await other.call("DELETE", "/api/tokens/not-a-uuid"))[0] == 404
    assert (await other.call("GET", "/api/tokens"))[1] == {"tokens": []}


async def test_an_api_token_manages_tokens_only_with_the_right(api: Api) -> None:
    _, plain = await _new_token(api)
    _, manager = await _new_token(api, name="token admin", can_manage_tokens=True)
    assert manager["can_manage_tokens"] is True

    status, refused = await _new_token(api, token=plain["token"])
    assert status == 403 and refused["error"]["code"] == "access_denied"
    assert "can_manage_tokens" in refused["error"]["message"]
    assert (await api.call("DELETE", f"/api/tokens/{manager['id']}", token=plain["token"]))[0] == 403
    assert (await api.call("GET", "/api/tokens", token=plain["token"]))[0] == 200  # reading is anyone's

    status, made = await _new_token(api, token=manager["token"], name="made by a token")
    assert status == 201, made
    assert (await api.call("DELETE", f"/api/tokens/{plain['id']}", token=manager["token"]))[0] == 204
    assert (await api.call("GET", "/api/tokens", token=plain["token"]))[0] == 401


async def test_the_dashboards_session_cookie_may_manage_tokens(api: Api) -> None:
    cookie = {"Cookie": f"clawfleet_session={api.token}", "Origin": api.url("/").rstrip("/")}
    async with api.http.post(api.url("/api/tokens"), json={"name": "forged"}, headers=cookie) as response:
        assert response.status == 403  # a cookie alone could be a forgery: the page's CSRF token is needed
    async with api.http.post(api.url("/api/tokens"), json={"name": "from the dashboard"},
                             headers={**cookie, "X-CSRF-Token": csrf_token(api.token)}) as response:
        assert response.status == 201, await response.text()


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 101}, "name"),
    ({"name": 5}, "name"), ({"name": "ok", "can_manage_tokens": "yes"}, "can_manage_tokens"),
    ({"name": "ok", "scope": "all"}, "scope"),
])
async def test_bad_token_requests_name_the_field(api: Api, body: dict, field: str) -> None:
    status, answer = await api.call("POST", "/api/tokens", body)
    assert status == 400 and answer["error"]["field"] == field, answer
    assert (await api.call("GET", "/api/tokens"))[1] == {"tokens": []}


async def test_a_name_of_100_characters_is_taken(api: Api) -> None:
    status, created = await _new_token(api, name="x" * 100)
    assert status == 201 and created["name"] == "x" * 100


async def test_the_fifty_first_token_answers_409(api: Api) -> None:
    for number in range(MAX_TOKENS_PER_USER):
        assert (await _new_token(api, name=f"token {number}"))[0] == 201
    status, answer = await _new_token(api)
    assert status == 409 and "revoke one" in answer["error"]["message"]
    assert len((await api.call("GET", "/api/tokens"))[1]["tokens"]) == MAX_TOKENS_PER_USER
