"""A docker instance's gateway calls its model through the platform's model gateway (its
start's warm-up turn answered by the model gateway itself): the real key goes out from the
platform, the container holds none of it (environment, `docker inspect`, files), and from the
instance's network the host answers on the model gateway's port alone.

The fake model listens on the host's loopback, which only the platform reaches; the gateway
has no Telegram channel. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import uuid

import aiodocker
import pytest
from structlog.testing import capture_logs

from clawfleet.settings import Settings
from provisioner.runtimes.docker_spec import container_name, network_name, proxy_address
from tests.e2e.test_docker import api  # noqa: F401 (the fixture, over this module's settings)
from tests.fakes.model import FakeModel
from tests.provisioner.runtimes.test_egress_guard import _host_listener, _probe

CANARY_KEY = "sk-proj-CANARYdockerMODELgateway0123456789"


@pytest.fixture
async def model():
    async with FakeModel(reply=lambda text: f"fake model heard: {text}") as model:
        yield model


@pytest.fixture
def settings(tmp_path, docker_engine, openclaw_image, model) -> Settings:
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="docker", docker_url=docker_engine, openclaw_image=openclaw_image,
        provider_urls={"openai": f"{model.url}/v1"}, start_timeout_s=150, warm_up=True,
    )


async def _in_container(docker: aiodocker.Docker, instance_id: str, argv: list[str]) -> str:
    container = await docker.containers.container(container_name(uuid.UUID(instance_id))).show()
    execution = await docker.containers.container(container["Id"]).exec(argv, user="1000:1000")
    async with execution.start(detach=False) as stream:
        said = []
        while (message := await stream.read_out()) is not None:
            said.append(message.data.decode(errors="replace"))
    return "".join(said)


async def test_the_container_calls_its_model_through_the_platform_and_holds_no_key(
        api, docker: aiodocker.Docker, model: FakeModel, openclaw_image: str) -> None:
    with capture_logs() as logs:
        status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": CANARY_KEY})
        assert status == 202, created
        events = await api.progress(created["id"], timeout=200)
    assert events[-1]["done"]
    instance_id = uuid.UUID(created["id"])
    # The start's warm-up turn ran in the container, answered by the model gateway: the provider saw nothing.
    assert "warming" in [event["step"] for event in events]
    assert [entry["event"] for entry in logs if entry["event"].startswith("warm-up")] == ["warm-up done"], logs
    assert model.requests == []

    # One agent turn inside the gateway (the CLI in the container connects to it on loopback).
    result = await api.platform.runtime.exec(instance_id, {}, ["agent", "--session-key", "model-gateway-check",
                                                               "--message", "ping through the platform", "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    assert "fake model heard: ping through the platform" in result.output
    assert model.requests and all(r.headers["authorization"] == f"Bearer {CANARY_KEY}" for r in model.requests)

    shown = await docker.containers.container(container_name(instance_id)).show()
    assert CANARY_KEY not in json.dumps(shown)  # environment, labels, mounts: nothing
    found = await _in_container(docker, created["id"], [
        "sh", "-c", f"grep -rl '{CANARY_KEY}' /home/node /run/secrets /tmp 2>/dev/null; cat /proc/1/environ; true"])
    assert CANARY_KEY not in found

    # From the instance's own network: the model gateway's port answers, another host port does not.
    network = await docker.networks.get(network_name(instance_id))
    gateway_address = proxy_address(await network.show(), None)  # the host on that network, as the runtime finds it
    other = await _host_listener("0.0.0.0", 0)
    try:
        other_port = other.sockets[0].getsockname()[1]
        seen = await _probe(docker, openclaw_image, network_name(instance_id), {
            "model_gateway": f"{gateway_address}:{api.platform.model_gateway.port}",
            "other": f"{gateway_address}:{other_port}"})
    finally:
        other.close()
    assert seen["model_gateway"] == "CONNECTED" and seen["other"].startswith("ERROR"), seen
