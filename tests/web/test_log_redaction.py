"""A real gateway that prints its own API key and a bot token: `/logs` (a tail, a plain follow and
an SSE follow) never hands them out, on the process runtime and on the docker runtime.

OpenClaw masks what it knows to be secret in its own output, so these gateways are told not to
(`logging.redactPatterns` replaced by a pattern that matches nothing) and to name their log file
after the secrets, which they print at start ("[gateway] log file: ..."): the platform's own
redaction is all that stands between them and the owner's screen.

The process gateway's Telegram channel and model provider point at the loopback fakes; the
docker one has no channel and its provider is the container's own loopback: nothing leaves.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from clawfleet.settings import Settings
from db.models import Instance
from db.redaction import REDACTED
from db.sealing import open_from
from tests.fakes.model import FakeModel
from tests.support.api_client import Api, migrated, running_api
from tests.support.docker_fixtures import remove_everything_of
from tests.support.memory_runtime import MemoryRuntime

CANARY_KEY = "sk-proj-canaryCANARYcanary0123456789abcd"
# OpenClaw masks its own bot's token even when told not to mask: this one it does not know
CANARY_TOKEN = "987654321:CANARYxCANARYxCANARYxCANARYxCANARY"
PRINTED = "[gateway] log file: "


def _loud(config: dict[str, Any]) -> dict[str, Any]:
    log_file = Path(config["logging"]["file"])
    config["logging"]["file"] = str(log_file.with_name(f"{CANARY_KEY}-{CANARY_TOKEN}-{log_file.name}"))
    config["logging"]["redactPatterns"] = ["^matches-nothing$"]
    return config


async def _logs(api: Api, instance_id: str, *, follow: bool, sse: bool = False) -> str:
    """What the owner gets: the whole tail, or a follow read until the printed line."""
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "text/event-stream" if sse else "text/plain"}
    url = api.url(f"/api/instances/{instance_id}/logs?tail=500&follow={int(follow)}")
    async with asyncio.timeout(30), api.http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        if not follow:
            return await response.text()
        received = ""
        async for chunk in response.content.iter_any():
            received += chunk.decode()
            if PRINTED in received and received.rstrip(" ").endswith("\n"):
                return received
    raise AssertionError("the stream ended before the gateway's line")


async def _assert_redacted_everywhere(api: Api, instance_id: str, raw: str, secrets: list[str]) -> None:
    assert CANARY_KEY in raw and CANARY_TOKEN in raw, raw[-3000:]  # the gateway did print them
    for text in (await _logs(api, instance_id, follow=False), await _logs(api, instance_id, follow=True),
                 await _logs(api, instance_id, follow=True, sse=True)):
        printed = next(line for line in text.splitlines() if PRINTED in line)
        assert REDACTED in printed, printed
        for secret in secrets:
            assert secret not in text and secret.split(":")[-1] not in text


async def test_every_runtimes_lines_are_redacted_on_the_way_out(settings_for, sessions) -> None:
    """A runtime that hands out lines as they are (as the docker engine does)."""
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": CANARY_KEY})
        await api.progress(created["id"])
        runtime.logs_by_instance[uuid.UUID(created["id"])].append(f"{PRINTED}/logs/{CANARY_KEY}-{CANARY_TOKEN}.log")
        for sse in (False, True):
            text = await _logs(api, created["id"], follow=False, sse=sse)
            assert f"{PRINTED}/logs/sk-{REDACTED}:{REDACTED}.log" in text
            assert CANARY_KEY not in text and CANARY_TOKEN.split(":")[1] not in text
    await runtime.close()


async def test_an_instances_own_gateway_token_is_masked_whatever_its_shape(settings_for) -> None:
    """The gateway token is random text no pattern recognises: its value itself is masked."""
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up()
        _, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": CANARY_KEY})
        await api.progress(created["id"])
        async with api.platform.sessions() as session:
            row = await session.get(Instance, uuid.UUID(created["id"]))
        gateway_token = open_from(api.platform.keyring, row, "gateway_secret_sealed").get_secret_value()
        runtime.logs_by_instance[row.id].append(f"auth token is {gateway_token} (do not share)")
        for sse in (False, True):
            text = await _logs(api, created["id"], follow=False, sse=sse)
            assert f"auth token is {REDACTED} (do not share)" in text
            assert gateway_token not in text
    await runtime.close()


@pytest.fixture
async def model():
    async with FakeModel() as fake:
        yield fake


async def test_a_process_gateway_printing_its_secrets_is_redacted(tmp_path, openclaw_install, telegram,
                                                                  model) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
        telegram_api_url=telegram.api_url, provider_urls={"openai": f"{model.url}/v1"}, start_timeout_s=150,
    )
    bot = telegram.add_bot()
    await migrated(settings)
    async with running_api(settings) as api:
        runtime = api.platform.runtime
        write_config = runtime.write_config
        runtime.write_config = lambda config, path: write_config(_loud(config), path)
        await api.sign_up()
        try:
            status, created = await api.call("POST", "/api/instances", {
                "model_provider": "openai", "api_key": CANARY_KEY, "telegram_bot_token": bot.token,
                "telegram_user_id": 4242})
            assert status == 202, created
            assert (await api.progress(created["id"]))[-1]["done"]
            raw = runtime.gateway_log(uuid.UUID(created["id"])).read_text()
            await _assert_redacted_everywhere(api, created["id"], raw, [CANARY_KEY, CANARY_TOKEN, bot.token])
        finally:
            for found in await runtime.list_all():
                await runtime.stop(found.instance_id, found.info, timeout=5)


async def test_a_docker_gateway_printing_its_secrets_is_redacted(tmp_path, docker_engine, openclaw_image) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="docker", docker_url=docker_engine, openclaw_image=openclaw_image,
        provider_urls={"openai": "http://127.0.0.1:9/v1"}, start_timeout_s=150,
    )
    await migrated(settings)
    async with running_api(settings) as api, aiodocker.Docker(url=docker_engine) as docker:
        runtime = api.platform.runtime
        assert runtime.name == "docker", runtime.unavailable_reason
        create_container = runtime.create_container
        runtime.create_container = lambda spec, config_json: create_container(
            spec, json.dumps(_loud(json.loads(config_json))).encode())
        await api.sign_up()
        created = None
        try:
            status, created = await api.call("POST", "/api/instances", {"model_provider": "openai",
                                                                        "api_key": CANARY_KEY})
            assert status == 202, created
            assert (await api.progress(created["id"], timeout=200))[-1]["done"]
            container = await runtime.get_container(uuid.UUID(created["id"]), {})
            raw = "".join(await container.log(stdout=True, stderr=True))
            await _assert_redacted_everywhere(api, created["id"], raw, [CANARY_KEY, CANARY_TOKEN])
        finally:
            if created is not None:
                await remove_everything_of(docker, [uuid.UUID(created["id"])])
