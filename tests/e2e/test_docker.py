"""The docker runtime end to end on the real engine: the same flow through the REST API as the
process runtime, hardening read back from `docker inspect`, instances unable to reach each
other, and the reconciler's view by label.

Gateways here have no Telegram channel, and their provider's baseUrl is the container's own
loopback, where nothing listens: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid

import aiodocker
import pytest
from pydantic import SecretStr

from clawfleet.settings import Settings
from db.models import Instance
from provisioner.providers import get_provider
from provisioner.runtimes.base import LaunchRequest
from provisioner.runtimes.docker_spec import BACKUPS_DIR, container_name, label_filter, network_name
from provisioner.runtimes.egress import EgressRules
from provisioner.runtimes.egress import installed as egress_installed
from tests.support.api_client import Api, migrated, running_api
from tests.support.docker_fixtures import remove_everything_of
from tests.support.platform_process import free_port

OPENAI_KEY = "sk-proj-dockerDOCKER0123456789abcdef"
NOWHERE = "http://127.0.0.1:9/v1"  # the container's own loopback: connection refused, nothing leaves


@pytest.fixture
def settings(tmp_path, docker_engine, openclaw_image) -> Settings:
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="docker", docker_url=docker_engine, openclaw_image=openclaw_image,
        provider_urls={"openai": NOWHERE}, start_timeout_s=150, max_instances_per_user=2,
        instance_memory_mb=1200, instance_cpus=0.75,  # not the defaults: the container must follow these
    )


@pytest.fixture
async def api(settings, docker):
    await migrated(settings)
    async with running_api(settings) as api:
        assert api.platform.runtime.name == "docker", api.platform.runtime.unavailable_reason
        await api.sign_up()
        try:
            yield api
        finally:  # a failed test must not leave containers, networks or volumes behind
            await remove_everything_of(docker, [row.id for row in await _rows(api)])


async def _rows(api: Api) -> list[Instance]:
    from sqlalchemy import select

    async with api.platform.sessions() as session:
        return list(await session.scalars(select(Instance)))


async def _deploy(api: Api) -> dict:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    events = await api.progress(created["id"], timeout=200)
    assert events[-1]["done"], events
    return created


async def _inspect(docker: aiodocker.Docker, instance_id: str) -> dict:
    return await docker.containers.container(container_name(uuid.UUID(instance_id))).show()


async def test_deploy_reconfigure_restart_stop_start_delete(api: Api, docker: aiodocker.Docker) -> None:
    created = await _deploy(api)
    shown = await _inspect(docker, created["id"])
    first_id = shown["Id"]
    status, health = await api.call("GET", f"/api/instances/{created['id']}/health")
    assert health["live"] and health["ready"], health
    memory = health["memory"]  # measured by the engine, beside the limit it enforces
    assert memory["limit_mb"] == 1200 and 50 < memory["used_mb"] <= 1200, memory

    new_model = next(m for m in get_provider("openai").models if m != created["model"])
    status, changed = await api.call("PUT", f"/api/instances/{created['id']}/config", {"model": new_model})
    assert status == 200 and changed["restart_required"]
    assert (await api.call("POST", f"/api/instances/{created['id']}/restart"))[0] == 202
    assert (await api.progress(created["id"], timeout=200))[-1]["done"]
    shown = await _inspect(docker, created["id"])
    assert shown["Id"] != first_id and shown["State"]["Running"]  # a fresh container, same volumes
    result = await api.platform.runtime.exec(uuid.UUID(created["id"]), {}, ["config", "get",
                                                                              "agents.defaults.model.primary"])
    assert f"openai/{new_model}" in result.output, result

    assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    assert not (await _inspect(docker, created["id"]))["State"]["Running"]
    assert (await api.call("POST", f"/api/instances/{created['id']}/start"))[0] == 202
    assert (await api.progress(created["id"], timeout=200))[-1]["done"]
    status, logs = await api.call("GET", f"/api/instances/{created['id']}/logs?tail=50")
    assert status == 200 and logs.strip() and OPENAI_KEY not in logs

    assert (await api.call("DELETE", f"/api/instances/{created['id']}?purge=true"))[0] == 202
    assert (await api.progress(created["id"]))[-1]["done"]
    assert await docker.containers.list(all=True, filters=json.dumps(label_filter(instance=created["id"]))) == []
    volumes = (await docker.volumes.list(filters=label_filter(instance=created["id"])))["Volumes"] or []
    assert volumes == []


async def test_an_instance_is_hardened_and_cannot_reach_another(api: Api, docker: aiodocker.Docker,
                                                                settings: Settings) -> None:
    # the platform runs as root beside the engine here: it installed the egress guard at start
    # (what the rules do to a container: tests/test_egress_guard.py)
    assert await egress_installed(EgressRules(settings.docker_subnet_pool, tuple(settings.docker_egress_deny)))
    first, second = await _deploy(api), await _deploy(api)
    shown = await _inspect(docker, first["id"])
    host = shown["HostConfig"]
    assert shown["Config"]["User"] == "1000:1000"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
    assert host["PidsLimit"] == 512 and host["ReadonlyRootfs"] is True
    # what the owner is entitled to (operator defaults here), not a constant of the runtime's
    assert host["Memory"] == settings.instance_memory_mb * 1024 * 1024 == host["MemorySwap"]
    assert host["NanoCpus"] == int(settings.instance_cpus * 1e9)
    assert "NODE_COMPILE_CACHE=/app/compile-cache" in shown["Config"]["Env"]  # the image's label says where
    heap = next(e for e in shown["Config"]["Env"] if e.startswith("NODE_OPTIONS="))
    assert int(heap.split("--max-old-space-size=")[1].split()[0]) * 1024 * 1024 < host["Memory"]
    assert set(host["Tmpfs"]) == {"/tmp", "/home/node/.cache"}
    mounts = {m["Destination"]: m for m in shown["Mounts"]}
    # state, auth-profile keys, the secret files, and where instance backups are made (on disk:
    # the engine's archive API cannot read a tmpfs, and OpenClaw's verify needs more room than /tmp)
    assert set(mounts) == {"/home/node/.openclaw", "/home/node/.config/openclaw", "/run/secrets", BACKUPS_DIR}
    assert mounts["/run/secrets"]["RW"] is False  # the gateway's secret files (tests/provisioner/runtimes)
    assert all(m["Type"] == "volume" for m in mounts.values())
    assert not any("docker.sock" in (m.get("Source") or "") for m in shown["Mounts"])
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert host["RestartPolicy"]["Name"] == "no"
    [binding] = shown["NetworkSettings"]["Ports"]["18789/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    assert list(shown["NetworkSettings"]["Networks"]) == [network_name(uuid.UUID(first["id"]))]
    assert shown["Config"]["Labels"]["clawfleet.instance"] == first["id"]
    assert OPENAI_KEY not in json.dumps(shown["Config"]["Labels"])

    other = await _inspect(docker, second["id"])
    address = next(iter(other["NetworkSettings"]["Networks"].values()))["IPAddress"]
    probe = ("const s=require('net').connect({host:process.argv[1],port:18789,timeout:3000});"
             "s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});"
             "s.on('timeout',()=>{console.log('TIMEOUT');process.exit(2)});"
             "s.on('error',e=>{console.log('ERROR '+e.code);process.exit(3)});")
    container = docker.containers.container(shown["Id"])
    execution = await container.exec(["node", "-e", probe, address], user="1000:1000")
    output = bytearray()
    async with execution.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            output += message.data
    assert b"CONNECTED" not in output and (b"TIMEOUT" in output or b"ERROR" in output), output

    listed = {found.instance_id for found in await api.platform.runtime.list_all()}
    assert listed == {uuid.UUID(first["id"]), uuid.UUID(second["id"])}


async def test_the_network_endpoint_reaches_the_container_on_its_own_network(settings, docker) -> None:
    """As when the platform itself runs in a container: the gateway's address on the instance's
    network, not the published port (on a Linux host the bridge is routable, so this runs here;
    joining the platform's own container to the network is skipped when it is not one)."""
    settings = settings.model_copy(update={"docker_endpoint": "network", "docker_join_container": ""})
    await migrated(settings)
    async with running_api(settings) as api:
        await api.sign_up()
        try:
            created = await _deploy(api)
            [row] = await _rows(api)
            address = row.runtime_state["address"]
            assert row.endpoint_url == f"http://{address}:18789" and not address.startswith("127.")
            assert ipaddress.ip_address(address) in ipaddress.ip_network("10.213.0.0/16")
            status, health = await api.call("GET", f"/api/instances/{created['id']}/health")
            assert health["ready"], health

            # logs follow the container: the last 3 lines at once, then what it says while it stops
            headers = {"Authorization": f"Bearer {api.token}"}
            async with api.http.get(api.url(f"/api/instances/{created['id']}/logs?tail=3&follow=1"),
                                    headers=headers) as response:
                first = [await response.content.readline() for _ in range(3)]
                assert all(line.strip() for line in first)
                assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
                async with asyncio.timeout(60):
                    later = [line async for line in response.content]  # ends when the container stops
            assert later and OPENAI_KEY.encode() not in b"".join(first + later)
        finally:
            await remove_everything_of(docker, [row.id for row in await _rows(api)])


async def test_the_reconciler_restarts_a_killed_container_readopts_and_removes_orphans(settings, docker) -> None:
    settings = settings.model_copy(update={"reconcile_interval_s": 0.5, "lease_ttl_s": 3, "backoff_base_s": 1,
                                           "backoff_max_s": 4})
    await migrated(settings)
    orphan = uuid.uuid4()
    try:
        async with running_api(settings) as api:
            await api.sign_up("owner@example.com")
            created = await _deploy(api)
            first = (await _inspect(docker, created["id"]))["Id"]
            await docker.containers.container(first).kill()
            async with asyncio.timeout(200):
                while (body := (await api.call("GET", f"/api/instances/{created['id']}"))[1])["restart_count"] < 1 \
                        or body["status"] != "running":
                    await asyncio.sleep(0.5)
            second = (await _inspect(docker, created["id"]))["Id"]
            assert second != first

        # the platform is gone; its container runs on. Something starts a container for no row.
        assert (await _inspect(docker, created["id"]))["State"]["Running"]
        async with aiodocker.Docker(url=settings.docker_url) as other:
            from provisioner.runtimes.docker import DockerConfig, DockerRuntime

            stray = DockerRuntime(other, DockerConfig(image=settings.openclaw_image, version="test"))
            await stray.start(LaunchRequest(orphan, free_port(), "openai", get_provider("openai").default_model,
                                            SecretStr(OPENAI_KEY), SecretStr("t" * 32), model_url=NOWHERE), {})
        async with running_api(settings) as api:  # re-adopted by label, the orphan removed
            async with asyncio.timeout(60):
                while await docker.containers.list(filters=json.dumps(label_filter(instance=str(orphan)))):
                    await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # more passes: nothing else happens
            shown = await _inspect(docker, created["id"])
            assert shown["Id"] == second and shown["State"]["Running"]
            [row] = await _rows(api)
            assert row.status == "running" and row.runtime_state["id"] == second and row.restart_count == 1
    finally:
        await remove_everything_of(docker, [uuid.UUID(created["id"]), orphan] if "created" in locals() else [orphan])
