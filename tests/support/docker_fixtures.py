"""The real Docker engine for the docker runtime's tests, and the OpenClaw image on it.

`make test` starts an engine when none answers and builds the image offline
(scripts/ensure-docker.sh, `clawfleet image build --offline`); the engine's address comes in
CLAWFLEET_DOCKER_URL (or DOCKER_HOST)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import aiodocker
import pytest
from aiodocker.volumes import DockerVolume

from clawfleet.settings import DEFAULT_OPENCLAW_VERSION, load_settings
from provisioner.runtimes.docker_spec import container_name, network_name, seed_name, volume_name
from tests.support.services import service_missing

OPENCLAW_IMAGE = f"clawfleet/openclaw:{DEFAULT_OPENCLAW_VERSION}"


def docker_url() -> str | None:
    return os.environ.get("CLAWFLEET_DOCKER_URL") or os.environ.get("DOCKER_HOST") or None


def debian_mirror() -> str | None:
    """CLAWFLEET_DEBIAN_MIRROR as `clawfleet image build` reads it (None: the host's apt sources), so
    images the tests build come from the same mirror, and hit the same cached Debian base."""
    return load_settings().debian_mirror


@pytest.fixture(scope="session")
async def docker_engine() -> str | None:
    """The engine's URL (None: the client's default), once it answers."""
    url = docker_url()
    try:  # the client itself refuses to be made when no socket is there
        async with aiodocker.Docker(url=url) as docker:
            await docker.version()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine to test against
        service_missing(f"no Docker engine answers at {url or 'the default socket'} ({type(exc).__name__}); "
                        "make test starts one (scripts/ensure-docker.sh)")
    return url


@pytest.fixture(scope="session")
async def openclaw_image(docker_engine) -> str:
    """The OpenClaw image's tag, once the engine has it."""
    async with aiodocker.Docker(url=docker_engine) as docker:
        try:
            await docker.images.inspect(OPENCLAW_IMAGE)
        except aiodocker.DockerError:
            service_missing(f"the image {OPENCLAW_IMAGE} is missing (make test builds it: clawfleet image build "
                            "--offline)")
    return OPENCLAW_IMAGE


@pytest.fixture
async def docker(docker_engine) -> AsyncIterator[aiodocker.Docker]:
    """A client of the test engine."""
    async with aiodocker.Docker(url=docker_engine) as client:
        yield client


async def remove_everything_of(docker: aiodocker.Docker, instance_ids: list[uuid.UUID]) -> None:
    """What the docker runtime made for these instances (container, network, volumes), so a
    failed test leaves nothing behind; what is already gone is skipped."""
    for instance_id in instance_ids:
        for remove in (lambda: docker.containers.container(container_name(instance_id)).delete(force=True),
                       lambda: docker.containers.container(seed_name(instance_id)).delete(force=True),
                       lambda: _delete_network(docker, network_name(instance_id)),
                       lambda: DockerVolume(docker, volume_name(instance_id, "state")).delete(),
                       lambda: DockerVolume(docker, volume_name(instance_id, "secrets")).delete(),
                       lambda: DockerVolume(docker, volume_name(instance_id, "credentials")).delete(),
                       lambda: DockerVolume(docker, volume_name(instance_id, "backups")).delete()):
            try:
                await remove()
            except aiodocker.DockerError:
                pass


async def _delete_network(docker: aiodocker.Docker, name: str) -> None:
    network = await docker.networks.get(name)
    await network.delete()
