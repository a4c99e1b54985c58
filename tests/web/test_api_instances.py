"""The REST API and the provisioner's logic, with an in-memory runtime (real HTTP readiness
probes on loopback) and the fake Telegram Bot API; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from db.models import AuditLog, Instance, User
from db.sealing import open_from
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.model_keys import key_sent_for

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
ANTHROPIC_KEY = "sk-ant-api03-canaryCANARYcanary0123456789"


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        api.runtime = runtime
        await api.sign_up()
        yield api
    await runtime.close()


async def _count_instances(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Instance))


# -- accounts ---------------------------------------------------------------------------------
async def test_register_login_logout(api: Api) -> None:
    email = "ada@example.com"
    fresh = await api.sign_up(email)
    status, body = await api.call("POST", "/api/auth/login", {"email": email, "password": "correct horse battery"})
    assert status == 200 and body["token"].startswith("cf_") and body["token"] != fresh
    assert (await api.call("GET", "/api/instances", token=body["token"]))[0] == 200
    assert (await api.call("POST", "/api/auth/logout", token=body["token"]))[0] == 204
    assert (await api.call("GET", "/api/instances", token=body["token"]))[0] == 401


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "not-an-email", "password": "long enough pw"}, 400, "email"),
        ({"email": "a@example.com", "password": "short"}, 400, "password"),
        ({"email": "a@example.com", "password": "long enough pw", "admin": True}, 400, "admin"),
    ],
)
async def test_bad_registrations_are_explained(api: Api, body, status, field) -> None:
    code, answer = await api.call("POST", "/api/auth/register", body)
    assert code == status and answer["error"]["field"] == field


async def test_duplicate_email_and_wrong_password(api: Api) -> None:
    await api.sign_up("dup@example.com")
    status, body = await api.call("POST", "/api/auth/register", {"email": "DUP@example.com", "password": "another password"})
    assert status == 409 and body["error"]["field"] == "email"
    status, body = await api.call("POST", "/api/auth/login", {"email": "dup@example.com", "password": "wrong password!"})
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_instance_routes_need_a_token(api: Api) -> None:
    status, body = await api.call("GET", "/api/instances", token="cf_not-a-real-token-at-all")
    assert status == 401 and "Bearer" in body["error"]["message"]


# -- create and deploy ------------------------------------------------------------------------
async def test_create_deploys_and_streams_progress(api: Api, sessions, telegram) -> None:
    bot = telegram.add_bot(username="ada_assistant_bot")
    status, created = await api.call("POST", "/api/instances", {
        "model_provider": "openai", "api_key": OPENAI_KEY, "telegram_bot_token": bot.token,
        "telegram_user_id": 4242,
    })
    assert status == 202, created
    assert created["status"] == "provisioning"
    assert created["url"] == f"http://{created['subdomain']}.localhost:8080"
    events = await api.progress(created["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["done"] and not events[-1]["failed"]
    assert {"config", "starting", "waiting", "ready"} <= {e["step"] for e in events}
    assert set(events[0]) >= {"seq", "step", "message", "elapsed_ms", "done", "failed"}

    status, shown = await api.call("GET", f"/api/instances/{created['id']}")
    assert status == 200 and shown["status"] == "running"
    assert shown["telegram_bot_username"] == "ada_assistant_bot" and shown["telegram_user_id"] == 4242
    launched = api.runtime.starts[-1]
    assert await key_sent_for(sessions, api.platform.keyring, launched) == OPENAI_KEY
    assert launched.bot_token.get_secret_value() == bot.token
    assert launched.telegram_allow_from == 4242
    assert launched.telegram_api_root == telegram.api_url  # not Telegram's own: passed to the gateway

    everything = str(created) + str(shown) + str(await api.call("GET", "/api/instances")) + str(events)
    assert OPENAI_KEY not in everything and bot.token not in everything
    async with sessions() as session:
        row = await session.get(Instance, launched.instance_id)
        assert OPENAI_KEY not in row.api_key_sealed
        actions = (await session.scalars(select(AuditLog.action).where(AuditLog.instance_id == row.id))).all()
    assert "instance.create" in actions
    assert open_from(api.platform.keyring, row, "api_key_sealed").get_secret_value() == OPENAI_KEY


async def test_late_progress_subscribers_get_the_replay(api: Api) -> None:
    _, created = await api.call("POST", "/api/instances", {"model_provider": "anthropic", "api_key": ANTHROPIC_KEY})
    first = await api.progress(created["id"])
    again = await api.progress(created["id"])
    assert first == again and again[-1]["done"]


def _create_body(**changes):
    body = {"model_provider": "openai", "api_key": OPENAI_KEY}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "field", "message_part"),
    [
        (_create_body(model_provider=...), "model_provider", "Choose a model provider"),
        (_create_body(model_provider="skynet"), "model_provider", "openai"),
        (_create_body(model="gpt-9000-ultra"), "model", "offers these models"),
        (_create_body(api_key=...), "api_key", "API key"),
        (_create_body(api_key="123456789:AAHfakefakefakefakefakefakefakefake1"), "api_key", ""),
        (_create_body(api_key=12345), "api_key", "API key"),
        (_create_body(telegram_bot_token="not a token"), "telegram_bot_token", "@BotFather"),
        (_create_body(telegram_user_id="me"), "telegram_user_id", "numeric"),
        (_create_body(telegram_user_id=-5), "telegram_user_id", "numeric"),
        (_create_body(colour="blue"), "colour", "Unknown field"),
    ],
)
async def test_bad_input_on_create_is_named_and_changes_nothing(api: Api, sessions, body, field, message_part) -> None:
    status, answer = await api.call("POST", "/api/instances", body)
    assert status == 400, answer
    assert answer["error"]["field"] == field and message_part in answer["error"]["message"]
    assert OPENAI_KEY not in str(answer)
    assert await _count_instances(sessions) == 0


async def test_body_must_be_a_json_object(api: Api) -> None:
    assert (await api.call("POST", "/api/instances", raw=b"{not json"))[0] == 400
    status, answer = await api.call("POST", "/api/instances", [1, 2])
    assert status == 400 and "JSON object" in answer["error"]["message"]


async def test_bot_tokens_are_checked_with_telegram(api: Api, settings_for, sessions, telegram) -> None:
    unknown = "5550001111:AAH" + "u" * 32  # right shape, but no such bot at the fake Telegram
    status, answer = await api.call("POST", "/api/instances", _create_body(telegram_bot_token=unknown))
    assert status == 400 and answer["error"]["field"] == "telegram_bot_token"
    assert "does not know this bot token" in answer["error"]["message"]
    assert unknown not in str(answer)

    bot = telegram.add_bot(username="shared_bot")
    assert (await api.call("POST", "/api/instances", _create_body(telegram_bot_token=bot.token)))[0] == 202
    other = Api(api.server, api.http)
    await other.sign_up()
    status, answer = await other.call("POST", "/api/instances", _create_body(telegram_bot_token=bot.token))
    assert status == 409 and answer["error"]["field"] == "telegram_bot_token"
    assert "@shared_bot already serves another assistant" in answer["error"]["message"]
    assert await _count_instances(sessions) == 1


async def test_the_provisioning_bots_own_token_is_refused(settings_for, sessions, telegram) -> None:
    own = telegram.add_bot(username="clawfleet_bot")
    async with running_api(settings_for(telegram_bot_token=own.token), MemoryRuntime()) as api:
        await api.sign_up()
        status, answer = await api.call("POST", "/api/instances", _create_body(telegram_bot_token=own.token))
    assert status == 400 and "ClawFleet's own bot" in answer["error"]["message"]


async def test_instance_limit_answers_402(api: Api) -> None:
    assert (await api.call("POST", "/api/instances", _create_body()))[0] == 202
    status, answer = await api.call("POST", "/api/instances", _create_body())
    assert status == 402 and answer["error"]["code"] == "limit_reached"


async def test_memory_budget_refuses_with_a_message(settings_for, sessions) -> None:
    async with running_api(settings_for(memory_budget_mb=2000, max_instances_per_user=5), MemoryRuntime()) as api:
        await api.sign_up()
        assert (await api.call("POST", "/api/instances", _create_body()))[0] == 202
        status, answer = await api.call("POST", "/api/instances", _create_body())
    assert status == 503 and answer["error"]["code"] == "capacity_exceeded"
    assert "memory budget" in answer["error"]["message"]


async def test_allowlist_access_policy(settings_for, sessions) -> None:
    settings = settings_for(access="allowlist", allowed_emails=["friend@example.com"])
    async with running_api(settings, MemoryRuntime()) as api:
        await api.sign_up("stranger@example.com")
        status, answer = await api.call("POST", "/api/instances", _create_body())
        assert status == 403 and "allowlist" in answer["error"]["message"]
        await api.sign_up("friend@example.com")  # anyone can claim a listed address: it counts once proven
        status, answer = await api.call("POST", "/api/instances", _create_body())
        assert status == 403 and "not verified yet" in answer["error"]["message"]
        async with sessions() as session:
            await session.execute(update(User).where(User.email == "friend@example.com")
                                  .values(email_verified_at=datetime.now(timezone.utc)))
            await session.commit()
        assert (await api.call("POST", "/api/instances", _create_body()))[0] == 202


async def test_someone_elses_instance_is_not_found(api: Api) -> None:
    _, created = await api.call("POST", "/api/instances", _create_body())
    stranger = Api(api.server, api.http)
    await stranger.sign_up()
    path = f"/api/instances/{created['id']}"
    for method, suffix, body in [("GET", "", None), ("PUT", "/config", {"model": "gpt-5.4-mini"}),
                                 ("POST", "/restart", None), ("POST", "/stop", None), ("DELETE", "", None),
                                 ("GET", "/health", None), ("GET", "/logs", None)]:
        status, answer = await stranger.call(method, path + suffix, body)
        assert status == 404, (method, suffix, answer)
    assert (await stranger.call("GET", "/api/instances/not-a-uuid"))[0] == 404


# -- lifecycle --------------------------------------------------------------------------------
async def test_config_change_restart_stop_start_delete(api: Api) -> None:
    _, created = await api.call("POST", "/api/instances", _create_body())
    instance_id = created["id"]
    await api.progress(instance_id)

    status, changed = await api.call("PUT", f"/api/instances/{instance_id}/config", {"model": "gpt-5.4-mini"})
    assert status == 200 and changed["changed"] == ["model"] and changed["restart_required"]
    assert api.runtime.starts[-1].model != "gpt-5.4-mini"  # applied by the restart, not before

    assert (await api.call("POST", f"/api/instances/{instance_id}/restart"))[0] == 202
    assert (await api.progress(instance_id))[-1]["done"]
    assert api.runtime.starts[-1].model == "gpt-5.4-mini"
    health = (await api.call("GET", f"/api/instances/{instance_id}/health"))[1]
    assert health["live"] and health["ready"] and health["status"] == "running"

    assert (await api.call("POST", f"/api/instances/{instance_id}/stop"))[0] == 202
    await api.progress(instance_id)
    assert (await api.call("GET", f"/api/instances/{instance_id}"))[1]["status"] == "stopped"
    assert (await api.call("POST", f"/api/instances/{instance_id}/stop"))[0] == 409

    assert (await api.call("POST", f"/api/instances/{instance_id}/start"))[0] == 202
    await api.progress(instance_id)
    assert (await api.call("GET", f"/api/instances/{instance_id}"))[1]["status"] == "running"

    assert (await api.call("DELETE", f"/api/instances/{instance_id}?purge=true"))[0] == 202
    assert (await api.progress(instance_id))[-1]["step"] == "deleted"
    assert (await api.call("GET", f"/api/instances/{instance_id}"))[0] == 404
    assert list(api.runtime.removed.values()) == [False]


async def test_switching_provider_needs_its_key(api: Api) -> None:
    _, created = await api.call("POST", "/api/instances", _create_body())
    path = f"/api/instances/{created['id']}/config"
    status, answer = await api.call("PUT", path, {"model_provider": "anthropic"})
    assert status == 400 and answer["error"]["field"] == "api_key"
    status, answer = await api.call("PUT", path, {"model_provider": "anthropic", "api_key": OPENAI_KEY})
    assert status == 400 and answer["error"]["field"] == "api_key"
    assert (await api.call("GET", f"/api/instances/{created['id']}"))[1]["model_provider"] == "openai"
    status, answer = await api.call("PUT", path, {"model_provider": "anthropic", "api_key": ANTHROPIC_KEY})
    assert status == 200 and answer["instance"]["model_provider"] == "anthropic"
    assert (await api.call("PUT", path, {}))[0] == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "gpt-9000-ultra"}, "model"),
        ({"model_provider": "skynet"}, "model_provider"),
        ({"api_key": "not a key at all"}, "api_key"),
        ({"api_key": ANTHROPIC_KEY}, "api_key"),  # an Anthropic key for an OpenAI instance
        ({"telegram_bot_token": "12:short"}, "telegram_bot_token"),
        ({"telegram_user_id": "someone"}, "telegram_user_id"),
        ({"name": "x"}, "name"),
    ],
)
async def test_bad_input_on_config_change_is_named_and_changes_nothing(api: Api, sessions, body, field) -> None:
    _, created = await api.call("POST", "/api/instances", _create_body())
    async with sessions() as session:
        before = await session.get(Instance, uuid.UUID(created["id"]))
    status, answer = await api.call("PUT", f"/api/instances/{created['id']}/config", body)
    assert status == 400 and answer["error"]["field"] == field, answer
    async with sessions() as session:
        after = await session.get(Instance, before.id)
    assert (after.model_provider, after.model, after.api_key_sealed, after.telegram_bot_token_sealed,
            after.telegram_allow_from) == (before.model_provider, before.model, before.api_key_sealed,
                                           before.telegram_bot_token_sealed, before.telegram_allow_from)


async def test_a_busy_instance_refuses_a_second_action(settings_for, sessions) -> None:
    async with running_api(settings_for(), MemoryRuntime(ready_after=1.5)) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", _create_body())
        status, answer = await api.call("POST", f"/api/instances/{created['id']}/restart")
        assert status == 409 and "it is starting" in answer["error"]["message"]
        assert (await api.progress(created["id"]))[-1]["done"]


async def test_never_ready_gateway_fails_with_a_reason(settings_for, sessions) -> None:
    runtime = MemoryRuntime(never_ready=True)
    async with running_api(settings_for(start_timeout_s=1.5), runtime) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", _create_body())
        events = await api.progress(created["id"])
        shown = (await api.call("GET", f"/api/instances/{created['id']}"))[1]
    assert events[-1]["failed"] and "not ready within 2 seconds" in events[-1]["reason"]
    assert shown["status"] == "error" and "not ready" in shown["status_reason"]
    assert runtime.gateways == {}  # cleaned up


async def test_a_gateway_that_exits_reports_its_last_log_line(settings_for, sessions) -> None:
    async with running_api(settings_for(), MemoryRuntime(exits_on_start=True)) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", _create_body())
        events = await api.progress(created["id"])
    assert events[-1]["failed"]
    assert "stopped while starting" in events[-1]["reason"] and "code 78" in events[-1]["reason"]


async def test_starts_beyond_the_cap_wait_their_turn(settings_for, sessions) -> None:
    async with running_api(settings_for(max_concurrent_starts=1, max_instances_per_user=3),
                           MemoryRuntime(ready_after=1.0)) as api:
        await api.sign_up()
        _, first = await api.call("POST", "/api/instances", _create_body())
        _, second = await api.call("POST", "/api/instances", _create_body())
        second_events = await api.progress(second["id"])
        first_events = await api.progress(first["id"])
    assert second_events[0]["step"] == "queued"
    assert first_events[-1]["done"] and second_events[-1]["done"]
    assert second_events[-1]["elapsed_ms"] >= 1000


async def test_logs_are_served_as_text(api: Api) -> None:
    _, created = await api.call("POST", "/api/instances", _create_body())
    await api.progress(created["id"])
    status, text = await api.call("GET", f"/api/instances/{created['id']}/logs?tail=10")
    assert status == 200 and "starting openai/" in text
    status, answer = await api.call("GET", f"/api/instances/{created['id']}/logs?tail=lots")
    assert status == 400 and answer["error"]["field"] == "tail"
