"""POST /api/instances/{id}/pairing over in-memory gateways, on SQLite and PostgreSQL: a code's
shape is checked first, an unknown code is a 400 naming `code`, an approved one makes its sender
the owner (again: the same answer), and only a running instance of one's own is paired."""

from __future__ import annotations

import uuid

import pytest

from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

BODY = {"model_provider": "openai", "api_key": "sk-proj-pairingPAIRING0123456789ab"}
CODE = "HX7K2MQP"
SENDER = 987654321


@pytest.fixture
async def paired_site(settings_for, sessions, telegram):
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up()
        status, created = await api.call("POST", "/api/instances",
                                         {**BODY, "telegram_bot_token": telegram.add_bot().token})
        assert status == 202, created
        assert (await api.progress(created["id"]))[-1]["done"]
        runtime.pairing_requests[uuid.UUID(created["id"])] = {CODE: SENDER}
        yield api, runtime, created["id"]
    await runtime.close()


async def test_an_approved_code_makes_its_sender_the_owner_and_again_changes_nothing(paired_site) -> None:
    api, runtime, instance_id = paired_site
    status, paired = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": " hx7k2mqp "})
    assert status == 200, paired
    assert paired["id"] == instance_id and paired["telegram_user_id"] == SENDER
    assert runtime.owners[uuid.UUID(instance_id)] == SENDER
    again, repeated = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": CODE})
    assert again == 200 and repeated["telegram_user_id"] == SENDER
    _, shown = await api.call("GET", f"/api/instances/{instance_id}")
    assert shown["telegram_user_id"] == SENDER


@pytest.mark.parametrize("code", ["", "HX7K2MQ", "HX7K2MQPX", "HX7K2MQ0", "HX7K2MQI", "HX7K 2MQ", 12345678, None])
async def test_a_code_of_the_wrong_shape_is_refused_naming_the_field(paired_site, code) -> None:
    api, runtime, instance_id = paired_site
    status, answer = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": code})
    assert status == 400 and answer["error"]["field"] == "code", answer
    assert "8 letters and digits" in answer["error"]["message"]
    assert uuid.UUID(instance_id) not in runtime.owners


async def test_an_unknown_code_says_it_may_have_expired(paired_site) -> None:
    api, runtime, instance_id = paired_site
    status, answer = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": "ZZZZ2222"})
    assert status == 400 and answer["error"]["field"] == "code"
    assert answer["error"]["message"] == ("No pending request has this code; codes expire after an hour: "
                                          "message your bot again for a new one.")
    _, shown = await api.call("GET", f"/api/instances/{instance_id}")
    assert shown["telegram_user_id"] is None and not runtime.owners


async def test_an_instance_that_is_not_running_is_not_paired(paired_site) -> None:
    api, runtime, instance_id = paired_site
    assert (await api.call("POST", f"/api/instances/{instance_id}/stop"))[0] == 202
    assert (await api.progress(instance_id))[-1]["done"]
    status, answer = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": CODE})
    assert status == 409 and "stopped, not running: start it" in answer["error"]["message"], answer
    assert not runtime.owners


async def test_someone_elses_instance_is_not_found(paired_site) -> None:
    api, runtime, instance_id = paired_site
    other = await api.sign_up("other@example.com")
    status, answer = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": CODE}, token=other)
    assert status == 404, answer
    status, _ = await api.call("POST", f"/api/instances/{uuid.uuid4()}/pairing", {"code": CODE}, token=other)
    assert status == 404 and not runtime.owners


async def test_an_instance_without_a_bot_has_nothing_to_pair(settings_for, sessions) -> None:
    async with running_api(settings_for(), MemoryRuntime()) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", BODY)
        assert (await api.progress(created["id"]))[-1]["done"]
        status, answer = await api.call("POST", f"/api/instances/{created['id']}/pairing", {"code": CODE})
    assert status == 409 and "no Telegram bot" in answer["error"]["message"]


async def test_only_the_code_field_is_taken(paired_site) -> None:
    api, _, instance_id = paired_site
    status, answer = await api.call("POST", f"/api/instances/{instance_id}/pairing", {"code": CODE, "user": 1})
    assert status == 400 and answer["error"]["field"] == "user"
