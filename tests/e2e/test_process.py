"""End to end through the REST API with the process runtime and real OpenClaw gateways.

Every gateway here points its Telegram channel at the loopback fake Bot API and its model
provider at the loopback fake model server: no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path

import aiohttp
import pytest

from clawfleet.settings import Settings
from db.models import Instance, User
from provisioner.providers import get_provider
from provisioner.runtimes import procfs
from tests.support.api_client import Api, migrated, running_api
from tests.support.process_gateways import api, fakes, process_settings  # noqa: F401 (fixtures)

OPENAI_KEY = "sk-proj-e2eE2Ee2eE2Ee2eE2Ee2e0123456789"


@pytest.fixture
def settings(tmp_path, openclaw_install, fakes) -> Settings:
    return process_settings(tmp_path, openclaw_install, *fakes, max_instances_per_user=2)


async def _row(api: Api, instance_id: str) -> Instance:
    async with api.platform.sessions() as session:
        return await session.get(Instance, uuid.UUID(instance_id))


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        return response.status, await response.text()


def _environment(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _from_bot(bot, chat_id: int) -> list[dict]:
    return [message for message in bot.messages(chat_id) if message.get("from", {}).get("is_bot")]


async def _set_cap(api: Api, user_id: uuid.UUID, usd: float) -> None:
    async with api.platform.sessions() as session:
        user = await session.get(User, user_id)
    await api.platform.model_gateway.caps.set_cap(user, usd)


async def test_deploy_reconfigure_restart_stop_start_delete(api: Api, settings: Settings) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    events = await api.progress(created["id"])
    assert events[-1]["done"], events
    row = await _row(api, created["id"])
    assert row.status == "running"
    assert (await _get(f"{row.endpoint_url}/readyz"))[0] == 200
    first_pid = row.runtime_state["pid"]
    home = settings.data_dir / "instances" / created["id"]
    config_text = (home / "openclaw.json").read_text()
    assert OPENAI_KEY not in config_text  # keys travel by environment, never in the file
    assert oct((home / "openclaw.json").stat().st_mode & 0o777) == "0o600"

    new_model = next(m for m in get_provider("openai").models if m != row.model)
    status, changed = await api.call("PUT", f"/api/instances/{created['id']}/config", {"model": new_model})
    assert status == 200 and changed["restart_required"]
    assert (await api.call("POST", f"/api/instances/{created['id']}/restart"))[0] == 202
    restarted = await api.progress(created["id"])
    assert restarted[-1]["done"], restarted
    row = await _row(api, created["id"])
    assert row.status == "running" and row.runtime_state["pid"] != first_pid
    assert not procfs.is_alive(first_pid)
    config = json.loads((home / "openclaw.json").read_text())
    assert config["agents"]["defaults"]["model"]["primary"] == f"openai/{new_model}"
    health = await _wait_ready(api, created["id"])
    assert health["live"] and health["ready"], (health, _log_tail(settings, created["id"]))
    # an idle gateway holds hundreds of MB (measured: about 0.9 GB); the limit is the entitlement
    assert 100 < health["memory"]["used_mb"] < 4096 and health["memory"]["limit_mb"] == settings.instance_memory_mb

    assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    stopped_pid = row.runtime_state["pid"]
    assert not procfs.is_alive(stopped_pid)
    assert (await api.call("GET", f"/api/instances/{created['id']}"))[1]["status"] == "stopped"

    assert (await api.call("POST", f"/api/instances/{created['id']}/start"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    row = await _row(api, created["id"])
    assert (await _get(f"{row.endpoint_url}/readyz"))[0] == 200
    status, logs = await api.call("GET", f"/api/instances/{created['id']}/logs?tail=50")
    assert status == 200 and logs.strip() and OPENAI_KEY not in logs

    assert (await api.call("DELETE", f"/api/instances/{created['id']}"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    assert not procfs.is_alive(row.runtime_state["pid"])
    assert not home.exists()
    kept = list((settings.data_dir / "deleted").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith(created["id"]) and (kept[0] / "state").is_dir()


async def test_the_users_bot_answers_through_openclaw(api: Api, fakes, settings: Settings) -> None:
    telegram, model = fakes
    model.reply = lambda text: f"Hello from the fake model, you said: {text}"
    bot = telegram.add_bot(username="e2e_assistant_bot")
    user_id = 777000111
    status, created = await api.call("POST", "/api/instances", {
        "model_provider": "openai", "api_key": OPENAI_KEY,
        "telegram_bot_token": bot.token, "telegram_user_id": user_id,
    })
    assert status == 202, created
    assert (await api.progress(created["id"]))[-1]["done"]

    user = telegram.user(user_id, first_name="Ada")
    await bot.user_sends(user, "ping from the test")
    try:
        answer = await bot.wait_for_message(user_id, lambda m: "fake model" in m.get("text", ""), timeout=240)
    except TimeoutError as exc:
        log = (settings.data_dir / "instances" / created["id"] / "logs" / "gateway.log").read_text()
        raise AssertionError(f"{exc}; model requests: {[(r.method, r.path, r.status) for r in model.requests]}; "
                             f"gateway log: {log[-6000:]}") from None
    assert "you said: ping from the test" in answer["text"]
    # The key went out from the platform's model gateway, in the provider's own header; the
    # instance sent only its credential, and holds the key nowhere: not in its processes'
    # environments, its config or any file of its state.
    assert model.requests and all(r.headers["authorization"] == f"Bearer {OPENAI_KEY}" for r in model.requests)
    home = settings.data_dir / "instances" / created["id"]
    assert bot.token not in (home / "openclaw.json").read_text()
    row = await _row(api, created["id"])
    for pid in procfs.session_members(row.runtime_state["pid"]):
        assert OPENAI_KEY.encode() not in _environment(pid)
    holding = [path for path in home.rglob("*") if path.is_file() and OPENAI_KEY.encode() in path.read_bytes()]
    assert holding == []
    assert (home / "secrets" / "model-credential").read_text().startswith("cf-model-")

    # Past the owner's spending cap the model gateway refuses, before the provider, and the
    # owner reads why in their bot, once; a raised cap lets the next message through.
    await _set_cap(api, row.user_id, 0.000001)  # one micro-dollar: already spent
    forwarded, answers = len(model.requests), len(_from_bot(bot, user_id))
    await bot.user_sends(user, "one more, please")
    refused = await bot.wait_for_message(user_id, lambda m: "spending cap" in m.get("text", ""), timeout=120)
    assert "is reached; it resets on" in refused["text"]
    await asyncio.sleep(5)  # OpenClaw would retry within this if it did
    assert len(_from_bot(bot, user_id)) == answers + 1 and len(model.requests) == forwarded
    await _set_cap(api, row.user_id, 50)
    await bot.user_sends(user, "and now?")
    again = await bot.wait_for_message(user_id, lambda m: "you said: and now?" in m.get("text", ""), timeout=60)
    assert again["text"]

    assert (await api.call("DELETE", f"/api/instances/{created['id']}?purge=true"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    assert not home.exists() and not (settings.data_dir / "deleted").exists()


async def test_a_gateway_outlives_the_platform(settings: Settings) -> None:

    await migrated(settings)
    pid = None
    try:
        async with running_api(settings) as api:
            await api.sign_up("owner@example.com")
            _, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
            events = await api.progress(created["id"])
            assert events[-1]["done"], events
            pid = (await _row(api, created["id"])).runtime_state["pid"]
        # the platform has shut down: its gateway runs on, in a session of its own
        assert procfs.is_alive(pid) and procfs.session_id(pid) == pid, _log_tail(settings, created["id"])
        async with running_api(settings) as api:
            status, body = await api.call("POST", "/api/auth/login",
                                          {"email": "owner@example.com", "password": "correct horse battery"})
            assert status == 200, body
            api.token = body["token"]
            listed = await api.platform.runtime.list_all()
            assert [(found.instance_id, found.info["pid"]) for found in listed] == [(uuid.UUID(created["id"]), pid)], (
                listed, _processes(settings))
            health = await _wait_ready(api, created["id"])
            assert health["live"] and health["ready"], (health, _log_tail(settings, created["id"]))
            assert (await api.call("DELETE", f"/api/instances/{created['id']}?purge=true"))[0] == 202
            assert (await api.progress(created["id"]))[-1]["done"]
        assert not procfs.is_alive(pid)
    finally:
        if pid is not None and procfs.is_alive(pid):  # a failed run must not leave the gateway behind
            procfs.signal_session(pid, signal.SIGKILL)


async def _wait_ready(api: Api, instance_id: str, timeout: float = 30) -> dict:
    """The instance's health once ready, or the last answer: a gateway busy with work of its own
    may miss one probe, which is not what this test is about."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        health = (await api.call("GET", f"/api/instances/{instance_id}/health"))[1]
        if health["ready"] or asyncio.get_running_loop().time() > deadline:
            return health
        await asyncio.sleep(0.5)


def _log_tail(settings: Settings, instance_id: str) -> str:
    path = settings.data_dir / "instances" / instance_id / "logs" / "gateway.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no gateway log)"


def _processes(settings: Settings) -> dict:
    """What /proc shows in the instances' directory, for a failure message."""
    found = procfs.processes_by_directory(settings.data_dir.resolve() / "instances")
    return {str(directory): [(pid, procfs.parent_id(pid), procfs.session_id(pid), procfs.start_time(pid))
                             for pid in pids] for directory, pids in found.items()}
