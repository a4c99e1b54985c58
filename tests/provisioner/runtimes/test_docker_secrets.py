"""The docker runtime keeps the gateway token and the bot token out of everything `docker inspect`
shows: they are files (0600, uid 1000, one link) in a credentials volume mounted read-only,
written before each start and removed with the container. A real gateway on the real engine reads
them: its owner's bot answers through the fake Bot API and the fake model, reached from the
container through a namespace of the test's own (tests/support/namespace_relay.py)."""

from __future__ import annotations

import json
import uuid

import pytest
from aiodocker.containers import DockerContainer
from pydantic import SecretStr

from provisioner.runtimes.base import LaunchRequest
from provisioner.runtimes.docker import DockerConfig, DockerRuntime
from provisioner.runtimes.docker_spec import label_filter, volume_name
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram
from tests.support.docker_fixtures import remove_everything_of
from tests.support.namespace_relay import outside_world, relay
from tests.support.platform_process import free_port
from tests.support.waiting import eventually, gateway_ready

OPENAI_KEY = "sk-proj-dockerSECRETS0123456789abcd"
GATEWAY_TOKEN = "gateway-token-dockerSECRETS-0123456789"
OWNER = 777000333
NOWHERE = "http://127.0.0.1:9/v1"  # the container's own loopback: nothing listens, nothing leaves


@pytest.fixture
async def runtime(docker, openclaw_image):
    made: list[uuid.UUID] = []
    yield DockerRuntime(docker, DockerConfig(image=openclaw_image, version="test")), made
    await remove_everything_of(docker, made)


def _request(instance_id: uuid.UUID, bot_token: str | None, **fields) -> LaunchRequest:
    fields.setdefault("telegram_api_root", NOWHERE.removesuffix("/v1"))
    fields.setdefault("model_url", NOWHERE)
    return LaunchRequest(instance_id, free_port(), "openai", "gpt-5.5", SecretStr(OPENAI_KEY), SecretStr(GATEWAY_TOKEN),
                         bot_token=SecretStr(bot_token) if bot_token else None, telegram_allow_from=OWNER,
                         owner_id=uuid.uuid4(), **fields)


async def _run_in(container: DockerContainer, *argv: str) -> str:
    execution = await container.exec(list(argv), user="1000:1000")
    output = bytearray()
    async with execution.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            output += message.data
    return output.decode(errors="replace")


async def test_inspect_shows_no_token_and_the_bot_still_answers(docker, runtime) -> None:
    runtime, made = runtime
    instance_id = uuid.uuid4()
    made.append(instance_id)
    with outside_world() as outside:
        async with FakeTelegram() as telegram, FakeModel() as model, \
                relay(outside, int(telegram.api_url.rsplit(":", 1)[1])) as bot_api, \
                relay(outside, int(model.url.rsplit(":", 1)[1])) as model_api:
            model.reply = lambda text: f"fake model heard: {text}"
            bot = telegram.add_bot(username="docker_secrets_bot")
            started = await runtime.start(_request(instance_id, bot.token, telegram_api_root=bot_api,
                                                   model_url=f"{model_api}/v1"), {})
            container = docker.containers.container(started.state["id"])
            shown = await container.show()
            everything = json.dumps(shown)  # Env, Cmd, Labels, Mounts and the rest
            assert GATEWAY_TOKEN not in everything and bot.token not in everything
            mounts = {mount["Destination"]: mount for mount in shown["Mounts"]}
            assert mounts["/run/secrets"]["Name"] == volume_name(instance_id, "credentials")
            assert mounts["/run/secrets"]["RW"] is False

            listing = await _run_in(container, "stat", "-c", "%n %a %u %g %h %F", "/run/secrets/gateway-token",
                                    "/run/secrets/telegram-bot-token")
            assert listing.splitlines() == ["/run/secrets/gateway-token 600 1000 1000 1 regular file",
                                            "/run/secrets/telegram-bot-token 600 1000 1000 1 regular file"], listing
            assert "Read-only file system" in await _run_in(container, "touch", "/run/secrets/another")
            seeds = await docker.containers.list(all=True, filters=json.dumps(label_filter(instance=str(instance_id))))
            assert [c.id for c in seeds] == [shown["Id"]]  # the seed container is gone

            await eventually(lambda: gateway_ready(started.endpoint_url), timeout=180,
                             what=lambda: "the gateway is not ready")
            await bot.user_sends(telegram.user(OWNER, first_name="Ada"), "are you in a container")
            try:
                answer = await bot.wait_for_message(OWNER, lambda m: "fake model" in m.get("text", ""), timeout=240)
            except TimeoutError as exc:
                logs = "".join(await container.log(stdout=True, stderr=True, tail=60))
                raise AssertionError(f"{exc}; model requests: {[r.path for r in model.requests]}; {logs}") from None
            assert "heard: are you in a container" in answer["text"]
            await runtime.stop(instance_id, started.state, timeout=5)


async def test_each_start_writes_todays_tokens_and_removal_takes_them(docker, runtime) -> None:
    runtime, made = runtime
    instance_id = uuid.uuid4()
    made.append(instance_id)

    async def secret_files(state: dict) -> str:
        container = docker.containers.container(state["id"])
        return await _run_in(container, "sh", "-c", "for f in /run/secrets/*; do echo \"$f=$(cat $f)\"; done")

    state = (await runtime.start(_request(instance_id, "555:first"), {})).state
    assert "/run/secrets/telegram-bot-token=555:first" in await secret_files(state)
    await runtime.stop(instance_id, state, timeout=5)
    state = (await runtime.start(_request(instance_id, "555:second"), state)).state  # a new token: a restart uses it
    assert (await secret_files(state)).splitlines() == [f"/run/secrets/gateway-token={GATEWAY_TOKEN}",
                                                         f"/run/secrets/model-credential={OPENAI_KEY}",
                                                         "/run/secrets/telegram-bot-token=555:second"]
    await runtime.stop(instance_id, state, timeout=5)
    state = (await runtime.start(_request(instance_id, None), state)).state  # and then removed: its file too
    assert (await secret_files(state)).splitlines() == [f"/run/secrets/gateway-token={GATEWAY_TOKEN}",
                                                         f"/run/secrets/model-credential={OPENAI_KEY}"]

    await runtime.remove(instance_id, state, keep_data=True)
    volumes = (await docker.volumes.list(filters=label_filter(instance=str(instance_id))))["Volumes"] or []
    kept = sorted(volume["Name"] for volume in volumes)
    assert kept == sorted([volume_name(instance_id, "secrets"), volume_name(instance_id, "state")])  # no tokens
