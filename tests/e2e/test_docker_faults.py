"""The docker runtime when things change under it: a new OpenClaw image (an upgrade keeps the
instance's volumes), and the Docker engine itself restarting while the platform runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import aiodocker
import pytest

from clawfleet.settings import Settings
from provisioner.runtimes.docker_spec import container_name
from tests.e2e.test_docker import NOWHERE, _deploy, _inspect, _rows
from tests.support.api_client import Api, migrated, running_api
from tests.support.docker_fixtures import remove_everything_of
from tests.support.services import service_missing

NEXT_IMAGE = "clawfleet/openclaw:next-for-tests"
ENGINE_PIDFILE = Path("/run/clawfleet-docker.pid")  # the engine scripts/ensure-docker.sh starts


@pytest.fixture
def settings(tmp_path, docker_engine, openclaw_image) -> Settings:
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="docker", docker_url=docker_engine, openclaw_image=openclaw_image, provider_urls={"openai": NOWHERE},
        start_timeout_s=150, reconcile_interval_s=0.5, lease_ttl_s=3, backoff_base_s=1, backoff_max_s=4,
    )


async def _running_again(api: Api, instance_id: str, restarts: int, timeout: float = 240) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            status, body = await api.call("GET", f"/api/instances/{instance_id}")
            if status == 200 and body["status"] == "running" and body["restart_count"] >= restarts:
                return body
            await asyncio.sleep(0.5)


async def test_an_image_upgrade_keeps_the_instances_data(settings, docker) -> None:
    await docker.images.tag(settings.openclaw_image, repo=NEXT_IMAGE.split(":")[0], tag=NEXT_IMAGE.split(":")[1])
    await migrated(settings)
    instance_ids: list[uuid.UUID] = []
    try:
        async with running_api(settings) as api:
            await api.sign_up("owner@example.com")
            created = await _deploy(api)
            instance_ids.append(uuid.UUID(created["id"]))
            container = docker.containers.container(container_name(instance_ids[0]))
            marker = await container.exec(["sh", "-c", "echo kept > /home/node/.openclaw/upgrade-marker"],
                                          user="1000:1000")
            await marker.start(detach=True)

        upgraded = settings.model_copy(update={"openclaw_image": NEXT_IMAGE})  # the operator moves to a new image
        async with running_api(upgraded) as api:
            status, body = await api.call("POST", "/api/auth/login",
                                          {"email": "owner@example.com", "password": "correct horse battery"})
            api.token = body["token"]
            assert (await api.call("POST", f"/api/instances/{created['id']}/restart"))[0] == 202
            assert (await api.progress(created["id"], timeout=200))[-1]["done"]
            shown = await _inspect(docker, created["id"])
            assert shown["Config"]["Image"] == NEXT_IMAGE and shown["State"]["Running"]
            check = await docker.containers.container(shown["Id"]).exec(
                ["cat", "/home/node/.openclaw/upgrade-marker"], user="1000:1000")
            output = bytearray()
            async with check.start(detach=False) as stream:
                while (message := await stream.read_out()) is not None:
                    output += message.data
            assert output.strip() == b"kept"
    finally:
        await remove_everything_of(docker, instance_ids)
        try:
            await docker.images.delete(NEXT_IMAGE)
        except aiodocker.DockerError:
            pass


async def test_the_platform_rides_out_an_engine_restart(settings, docker) -> None:
    if not ENGINE_PIDFILE.exists():
        service_missing("restarting the engine needs the one scripts/ensure-docker.sh starts")
    await migrated(settings)
    instance_ids: list[uuid.UUID] = []
    async with running_api(settings) as api:
        await api.sign_up()
        try:
            created = await _deploy(api)
            instance_ids.append(uuid.UUID(created["id"]))
            os.kill(int(ENGINE_PIDFILE.read_text()), signal.SIGTERM)  # the engine goes away (its containers too)
            async with asyncio.timeout(60):
                while ENGINE_PIDFILE.exists():
                    await asyncio.sleep(0.2)
            status, health = await api.call("GET", f"/api/instances/{created['id']}/health")
            assert status == 200 and not health["ready"]  # meanwhile: reported, not hidden

            started = subprocess.run(["scripts/ensure-docker.sh"], capture_output=True, text=True, timeout=120,
                                     env={**os.environ, "DOCKER_HOST": settings.docker_url or ""})
            assert started.returncode == 0, started.stderr
            body = await _running_again(api, created["id"], restarts=1)
            assert body["failure_streak"] >= 1
            assert (await _inspect(docker, created["id"]))["State"]["Running"]
        finally:
            instance_ids += [row.id for row in await _rows(api) if row.id not in instance_ids]
            await remove_everything_of(docker, instance_ids)
