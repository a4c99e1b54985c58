"""The compose deployment end to end: the platform's own image (the top-level Dockerfile) runs in
a container the way compose.yaml runs it (the engine's socket mounted, the socket's group added,
user 10001, data in a volume, the key ring a Docker secret file, CLAWFLEET_DOCKER_ENDPOINT=network),
and the test drives it through its published REST API from the host.

The platform joins each instance's network and reaches the gateway at the container's address:
no published port is used for health, and nothing but the two containers shares that network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import uuid

import aiodocker
import aiohttp
import pytest

from db.sealing import generate_key
from provisioner.images.offline import default_cache_dir
from provisioner.runtimes.docker import _run_in
from provisioner.runtimes.docker_spec import container_name, label_filter, network_name
from tests.support.control_ui import control_ui
from tests.support.docker_fixtures import debian_mirror, remove_everything_of
from tests.support.instance_hosts import HostBrowser
from tests.support.openclaw_fixtures import RUNTIME_DIR
from tests.support.platform_image import platform_image
from tests.support.platform_process import RemoteApi, free_port
from tests.support.services import service_missing

OPENAI_KEY = "sk-proj-composeCOMPOSE0123456789abc"
NOWHERE = "http://127.0.0.1:9/v1"  # the gateway container's own loopback: nothing leaves
KEYS_IN_CONTAINER = "/run/secrets/clawfleet_secret_keys"  # compose.yaml's secret
PLATFORM_UID = 10001  # the Dockerfile's user


@pytest.fixture(scope="module")
async def platform_tag(docker_engine) -> str:
    try:
        return await asyncio.to_thread(platform_image, docker_engine, default_cache_dir(RUNTIME_DIR),
                                       debian_mirror())
    except Exception as exc:  # noqa: BLE001 - e.g. not root: debootstrap cannot run
        service_missing(f"the platform's image cannot be built here: {exc}")


def _engine_socket(url: str | None) -> str:
    path = (url or "unix:///var/run/docker.sock").removeprefix("unix://")
    if not os.path.exists(path):
        service_missing(f"the compose test mounts the engine's socket, and {url} is not a local socket")
    return path


@pytest.fixture
def key_ring(tmp_path) -> tuple[str, str]:
    """The secret keys file compose mounts (its `secrets:`), readable by the platform's user only."""
    key, path = generate_key(), tmp_path / "secret.keys"
    path.write_text(f"{key}\n")
    path.chmod(0o600)
    os.chown(path, PLATFORM_UID, PLATFORM_UID)  # compose bind-mounts it with the host's owner and mode
    return key, str(path)


@pytest.fixture
async def platform(docker, docker_engine, openclaw_image, platform_tag, key_ring):
    """The platform's container, as compose.yaml runs it; removed with what it made."""
    socket_path, port, suffix = _engine_socket(docker_engine), free_port(), uuid.uuid4().hex[:8]
    volume = await docker.volumes.create({"Name": f"clawfleet-compose-test-{suffix}"})
    container = await docker.containers.create({
        "Image": platform_tag,
        "Env": [f"{key}={value}" for key, value in {
            "CLAWFLEET_RUNTIME": "docker", "CLAWFLEET_DOCKER_ENDPOINT": "network",
            "CLAWFLEET_OPENCLAW_IMAGE": openclaw_image, "CLAWFLEET_SECRET_KEYS_FILE": KEYS_IN_CONTAINER,
            "CLAWFLEET_PROVIDER_URLS": f"openai={NOWHERE}", "CLAWFLEET_START_TIMEOUT_S": "150",
            "CLAWFLEET_PUBLIC_URL": f"http://localhost:{port}", "CLAWFLEET_INSTANCE_DOMAIN": "localhost",
        }.items()],
        "HostConfig": {
            "Binds": [f"{socket_path}:/var/run/docker.sock", f"{volume.name}:/data",
                      f"{key_ring[1]}:{KEYS_IN_CONTAINER}:ro"],
            "GroupAdd": [str(os.stat(socket_path).st_gid)],  # compose.yaml: group_add DOCKER_GID
            "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
        },
    }, name=f"clawfleet-compose-test-{suffix}")
    made: list[uuid.UUID] = []  # the test adds the instances it creates: removed whatever happens
    try:
        await container.start()
        async with aiohttp.ClientSession() as http:
            api = RemoteApi(f"http://127.0.0.1:{port}", http)
            await _until_it_answers(api, container)
            yield api, container, made
    finally:
        await container.delete(force=True)  # first: it is joined to the instance networks
        await remove_everything_of(docker, made)
        await volume.delete()


async def _until_it_answers(api: RemoteApi, container) -> None:
    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    if (await api.call("GET", "/healthz"))[0] == 200:
                        return
                except aiohttp.ClientError:
                    pass
                if not (await container.show())["State"]["Running"]:
                    break
                await asyncio.sleep(0.3)
    except TimeoutError:
        pass
    logs = "".join(await container.log(stdout=True, stderr=True, tail=40))
    pytest.fail(f"the platform's container did not answer /healthz:\n{logs}")


async def test_the_platform_in_a_container_deploys_through_the_instance_network(platform, docker,
                                                                                key_ring) -> None:
    api, container, made = platform
    shown = await container.show()
    platform_id = shown["Id"]
    assert key_ring[0] not in json.dumps(shown)  # the key ring is a file, not in the platform's Env
    for page in ("/login", "/static/app.css"):  # the image holds the pages' templates and assets
        status, body = await api.call("GET", page)
        assert status == 200 and body, (page, status)
    await api.sign_up("ada@example.com")
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    made.append(uuid.UUID(created["id"]))
    events = await api.progress(created["id"], timeout=240)
    if not events[-1]["done"]:
        logs = "".join(await container.log(stdout=True, stderr=True, tail=60))
        pytest.fail(f"the deploy failed: {events}\nthe platform's log:\n{logs}")
    instance_id = uuid.UUID(created["id"])

    status, health = await api.call("GET", f"/api/instances/{created['id']}/health")
    assert status == 200 and health["live"] and health["ready"], health
    network = await docker.networks.get(network_name(instance_id))
    shown = await network.show()
    members = {member_id: member["IPv4Address"].split("/")[0] for member_id, member in shown["Containers"].items()}
    gateway = await docker.containers.get(container_name(instance_id))
    gateway_id = (await gateway.show())["Id"]
    assert set(members) == {gateway_id, platform_id}  # the gateway and the platform, nobody else
    assert ipaddress.ip_address(members[gateway_id]) in ipaddress.ip_network("10.213.0.0/16")
    assert shown["Options"]["com.docker.network.bridge.enable_icc"] == "true"

    # Owner sign-in in this mode: the gateway trusts the platform's own address on its network,
    # and the owner's browser lands in the Control UI through the platform's container.
    config = await _run_in(gateway, ["node", "openclaw.mjs", "config", "get", "gateway.trustedProxies", "--json"])
    assert json.loads(config.output[config.output.index("["):]) == [f"{members[platform_id]}/32"], config.output
    ada = HostBrowser(api.base_url.replace("127.0.0.1", "localhost"))
    try:
        await ada.sign_in("ada@example.com")
        status, landed, text, _ = await ada.get(f"{created['url']}/")
        assert status == 200 and landed == f"{created['url']}/" and "<title>OpenClaw Control</title>" in text
        ws_url = created["url"].replace("http://", "ws://", 1) + "/"
        async with control_ui(ada.http, ws_url, {}, created["url"]) as (_, answer):
            assert answer["ok"] and answer["payload"]["auth"]["method"] == "trusted-proxy", answer
    finally:
        await ada.close()

    status, logs = await api.call("GET", f"/api/instances/{created['id']}/logs?tail=20")
    assert status == 200 and logs.strip() and OPENAI_KEY not in logs
    platform_logs = "".join(await container.log(stdout=True, stderr=True))
    assert OPENAI_KEY not in platform_logs
    assert "generated a secret key" not in platform_logs  # the mounted file's key seals

    assert (await api.call("DELETE", f"/api/instances/{created['id']}?purge=true"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    assert await docker.containers.list(all=True, filters=json.dumps(label_filter(instance=created["id"]))) == []
    with pytest.raises(aiodocker.DockerError):
        await docker.networks.get(network_name(instance_id))  # left first, then removed
