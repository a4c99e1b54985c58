"""The warm-up turn, end to end: a real OpenClaw gateway (process runtime) behind the platform's
model gateway and the fake model, with the loopback fake Bot API.

The start runs one agent turn inside the new gateway before it reports running; the model
gateway answers it itself, so the provider receives nothing from it; it leaves no session,
archive or memory entry, the owner's first model request carries no notice of it, and the
workspace's first-run BOOTSTRAP.md is still pending for the owner's real first conversation.
A warm-up that fails does not fail the start."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from clawfleet.settings import Settings
from db.models import Instance
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.process_gateways import api, fakes, process_settings  # noqa: F401 (fixtures)

OPENAI_KEY = "sk-proj-warmWARMwarm0123456789abcdefgh"


@pytest.fixture
def settings(tmp_path, openclaw_install, fakes) -> Settings:
    return process_settings(tmp_path, openclaw_install, *fakes, warm_up=True)


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()
            and needle in path.read_bytes()]


async def test_the_warm_up_runs_inside_the_gateway_and_leaves_no_trace(api: Api, settings: Settings, fakes) -> None:
    telegram, model = fakes
    bot = telegram.add_bot(username="warm_assistant_bot")
    owner_id = 515151
    nonces = api.platform.model_gateway.warm_ups
    issued: list[str] = []
    answered: list[uuid.UUID] = []
    register, carried_by = nonces.register, nonces.carried_by

    def recording_register(instance_id: uuid.UUID) -> str:
        issued.append(register(instance_id))
        return issued[-1]

    def recording_carried_by(instance_id: uuid.UUID, body: bytes) -> str | None:
        found = carried_by(instance_id, body)
        if found:
            answered.append(instance_id)
        return found

    nonces.register, nonces.carried_by = recording_register, recording_carried_by
    status, created = await api.call("POST", "/api/instances", {
        "model_provider": "openai", "api_key": OPENAI_KEY, "telegram_bot_token": bot.token,
        "telegram_user_id": owner_id})
    assert status == 202, created
    events = await api.progress(created["id"])
    steps = [event["step"] for event in events]
    assert events[-1]["done"] and steps.index("waiting") < steps.index("warming") < len(steps) - 1, steps

    # The turn ran and its model calls were answered by the model gateway, the provider saw none.
    instance_id = uuid.UUID(created["id"])
    assert len(issued) == 1 and answered and set(answered) == {instance_id}
    assert model.requests == []

    # No trace: no stored session, no file of the instance's state (session store, archives,
    # memory index, workspace) holds the nonce, and the first-run ritual is still pending.
    home = settings.data_dir / "instances" / created["id"]
    async with api.platform.sessions() as session:
        row = await session.get(Instance, instance_id)
    listed = await api.platform.runtime.exec(instance_id, row.runtime_state, ["sessions", "list", "--json"])
    stored = json.loads(listed.output[listed.output.find("{"):])
    assert stored["count"] == 0 and stored["sessions"] == [], stored
    assert _files_holding(home / "state", issued[0].encode()) == []
    assert not list((home / "state").rglob("*.deleted.*"))
    assert (home / "state" / "workspace" / "BOOTSTRAP.md").is_file()

    # The owner's first message: answered, through the provider, with nothing of the warm-up.
    await bot.user_sends(telegram.user(owner_id, first_name="Grace"), "hello, first time")
    answer = await bot.wait_for_message(owner_id, lambda m: "fake reply to" in m.get("text", ""), timeout=120)
    assert "hello, first time" in answer["text"]
    turn = [r for r in model.requests if r.user_text == "hello, first time" and r.body and r.body.get("tools")]
    assert turn, [(r.path, r.user_text[:60]) for r in model.requests]
    for request in model.requests:
        sent = json.dumps(request.body)
        assert issued[0] not in sent and "Warm-up check" not in sent and "incognito" not in sent
    assert "BOOTSTRAP.md" in json.dumps(turn[0].body)  # the first-run ritual reached the owner's turn
    listed = await api.platform.runtime.exec(instance_id, row.runtime_state, ["sessions", "list", "--json"])
    keys = [s["key"] for s in json.loads(listed.output[listed.output.find("{"):])["sessions"]]
    assert len(keys) == 1 and "incognito" not in keys[0] and "warm" not in keys[0], keys

    assert (await api.call("DELETE", f"/api/instances/{created['id']}?purge=true"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]


async def test_a_failed_warm_up_does_not_fail_the_start(settings_for, sessions) -> None:
    """The in-memory runtime's exec answers no agent turn: the warm-up fails, the start does not."""
    with capture_logs() as logs:
        async with running_api(settings_for(warm_up=True), MemoryRuntime()) as api:
            await api.sign_up()
            status, created = await api.call("POST", "/api/instances", {
                "model_provider": "openai", "api_key": "sk-proj-canaryCANARYcanary0123456789"})
            assert status == 202
            events = await api.progress(created["id"])
            _, shown = await api.call("GET", f"/api/instances/{created['id']}")
    assert "warming" in [event["step"] for event in events] and events[-1]["done"]
    assert shown["status"] == "running"
    failed = [entry for entry in logs if entry["event"].startswith("warm-up failed")]
    assert len(failed) == 1 and failed[0]["instance_id"] == created["id"] and failed[0]["reason"]


async def test_the_setting_turns_the_warm_up_off(settings_for, sessions) -> None:
    async with running_api(settings_for(warm_up=False), MemoryRuntime()) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", {
            "model_provider": "openai", "api_key": "sk-proj-canaryCANARYcanary0123456789"})
        events = await api.progress(created["id"])
    assert events[-1]["done"] and "warming" not in [event["step"] for event in events]
