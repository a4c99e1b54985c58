"""GET, PATCH and DELETE /api/me over the real app (in-memory gateways)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, update

from db.models import ApiToken, AuditLog, Instance, User
from db.types import utcnow
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

PASSWORD = "correct horse battery"
OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
PROFILE_FIELDS = {"id", "email", "email_verified", "telegram_user_id", "telegram_username", "created_at",
                  "is_admin"}


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with running_api(settings_for(max_instances_per_user=3), runtime) as api:
        api.runtime = runtime
        await api.sign_up("ada@example.com")
        yield api
    await runtime.close()


async def _login(api: Api, email: str = "ada@example.com", password: str = PASSWORD) -> tuple[int, dict]:
    return await api.call("POST", "/api/auth/login", {"email": email, "password": password}, token="none")


async def test_get_me_describes_the_account(api: Api) -> None:
    status, me = await api.call("GET", "/api/me")
    assert status == 200 and set(me) == PROFILE_FIELDS
    assert me["email"] == "ada@example.com" and me["email_verified"] is False and me["is_admin"] is False
    assert me["telegram_user_id"] is None and uuid.UUID(me["id"])
    assert (await api.call("GET", "/api/me", token="cf_nobody"))[0] == 401


async def test_a_password_change_needs_the_current_one_and_logs_out_the_other_sessions(api: Api, sessions) -> None:
    _, other = await _login(api)
    _, api_token = await api.call("POST", "/api/tokens", {"name": "script"})

    status, wrong = await api.call("PATCH", "/api/me", {"password": "a new long password", "current_password": "nope"})
    assert (status, wrong["error"]["field"]) == (401, "current_password")
    status, missing = await api.call("PATCH", "/api/me", {"password": "a new long password"})
    assert (status, missing["error"]["field"]) == (401, "current_password")
    assert (await api.call("GET", "/api/me", token=other["token"]))[0] == 200  # nothing changed yet

    status, me = await api.call("PATCH", "/api/me", {"password": "a new long password", "current_password": PASSWORD})
    assert status == 200 and me["email"] == "ada@example.com"
    assert (await api.call("GET", "/api/me"))[0] == 200  # the caller's own session stays
    assert (await api.call("GET", "/api/me", token=other["token"]))[0] == 401  # the other one is gone
    assert (await api.call("GET", "/api/me", token=api_token["token"]))[0] == 200  # API tokens are not sessions
    assert (await _login(api))[0] == 401
    assert (await _login(api, password="a new long password"))[0] == 200


async def test_an_email_change_is_checked_and_must_be_verified_again(api: Api, sessions) -> None:
    async with sessions() as session:
        await session.execute(update(User).values(email_verified_at=utcnow()))
        await session.commit()
    assert (await api.call("GET", "/api/me"))[1]["email_verified"] is True
    other = Api(api.server, api.http)
    await other.sign_up("bob@example.com")

    status, bad = await api.call("PATCH", "/api/me", {"email": "not an email", "current_password": PASSWORD})
    assert (status, bad["error"]["field"]) == (400, "email")
    status, taken = await api.call("PATCH", "/api/me", {"email": "Bob@example.com", "current_password": PASSWORD})
    assert (status, taken["error"]["field"]) == (409, "email")

    status, me = await api.call("PATCH", "/api/me", {"email": " Ada2@Example.com ", "current_password": PASSWORD})
    assert status == 200 and me["email"] == "ada2@example.com" and me["email_verified"] is False
    assert (await _login(api, "ada2@example.com"))[0] == 200


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 400, "body"), ({"current_password": PASSWORD}, 400, "body"),
    ({"password": "short", "current_password": PASSWORD}, 400, "password"),
    ({"email": 5, "current_password": PASSWORD}, 400, "email"), ({"admin": True}, 400, "admin"),
])
async def test_bad_profile_changes_name_the_field(api: Api, body: dict, status: int, field: str) -> None:
    code, answer = await api.call("PATCH", "/api/me", body)
    assert (code, answer["error"]["field"]) == (status, field), answer


async def test_a_telegram_only_account_sets_a_first_password_without_a_current_one(api: Api, sessions) -> None:
    user = await api.platform.accounts.telegram_user(424242, 424242, "ada_tg")
    async with sessions() as session:
        from accounts import tokens
        issued = tokens.issue(session, user, kind="session", name="login")
        await session.commit()
    status, me = await api.call("PATCH", "/api/me", {"email": "tg@example.com", "password": "a first password"},
                                token=issued.token)
    assert status == 200, me
    assert me["telegram_user_id"] == 424242 and me["telegram_username"] == "ada_tg"
    assert (await _login(api, "tg@example.com", "a first password"))[0] == 200


async def test_delete_me_removes_the_instances_and_the_account(api: Api, sessions) -> None:
    created = []
    for _ in range(2):
        status, instance = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
        assert status == 202, instance
        created.append(instance["id"])
    for instance_id in created:
        await api.wait_status(instance_id, "running")
    _, api_token = await api.call("POST", "/api/tokens", {"name": "script"})

    status, wrong = await api.call("DELETE", "/api/me", {"password": "not my password"})
    assert (status, wrong["error"]["field"]) == (401, "password")
    assert (await api.call("DELETE", "/api/me"))[0] == 401  # no password sent
    assert len(api.runtime.gateways) == 2

    assert (await api.call("DELETE", "/api/me", {"password": PASSWORD}))[0] == 204
    assert api.runtime.gateways == {}  # each gateway stopped...
    assert {str(i): keep for i, keep in api.runtime.removed.items()} == {i: False for i in created}  # ...data erased
    assert (await api.call("GET", "/api/me"))[0] == 401
    assert (await api.call("GET", "/api/me", token=api_token["token"]))[0] == 401
    assert (await _login(api))[0] == 401
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
        assert await session.scalar(select(func.count()).select_from(Instance)) == 0
        assert await session.scalar(select(func.count()).select_from(ApiToken)) == 0
        actions = set(await session.scalars(select(AuditLog.action)))
    assert {"user.delete", "instance.delete"} <= actions
