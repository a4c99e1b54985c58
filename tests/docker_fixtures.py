"""The real Docker engine for the docker runtime's tests, and the OpenClaw image on it.

`make test` starts an engine when none answers and builds the image offline
(scripts/ensure-docker.sh, `clawfleet image build --offline`); the engine's address comes in
CLAWFLEET_DOCKER_URL (or DOCKER_HOST)."""

from __future__ import annotations

import os

import aiodocker
import pytest

from clawfleet.settings import DEFAULT_OPENCLAW_VERSION
from tests.conftest import service_missing

OPENCLAW_IMAGE = f"clawfleet/openclaw:{DEFAULT_OPENCLAW_VERSION}"


def docker_url() -> str | None:
    return os.environ.get("CLAWFLEET_DOCKER_URL") or os.environ.get("DOCKER_HOST") or None


@pytest.fixture(scope="session")
async def docker_engine() -> str | None:
    """The engine's URL (None: the client's default), once it answers."""
    url = docker_url()
    async with aiodocker.Docker(url=url) as docker:
        try:
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
