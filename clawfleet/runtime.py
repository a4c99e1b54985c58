"""The runtime the settings choose, opened for the process and closed with it.

The process runtime needs OpenClaw installed; the docker runtime an engine that answers, the
image, and the egress guard set up first. When the chosen one cannot run here, an
UnavailableRuntime says why, so the rest of the platform still starts and deploys are refused
with the reason.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import aiohttp
import structlog

from clawfleet import __version__
from clawfleet.settings import Settings
from provisioner.runtimes import egress
from provisioner.runtimes.base import Runtime, UnavailableRuntime

if TYPE_CHECKING:  # the docker runtime's module is imported only when it is chosen
    from provisioner.runtimes.docker import DockerConfig

log = structlog.get_logger(__name__)


class RuntimeUnavailable(Exception):
    """The configured runtime cannot run here; the message says what to do."""


@asynccontextmanager
async def open_runtime(settings: Settings, given: Runtime | None = None,
                       model_gateway_port: int | None = None) -> AsyncIterator[Runtime]:
    """`given` (tests bring their own) is used as it is and left to its maker to close.
    `model_gateway_port`: the port the model gateway got, when not the settings' own (0 there)."""
    if given is not None:
        yield given
        return
    try:
        runtime = await build_runtime(settings, model_gateway_port)
    except RuntimeUnavailable as exc:
        log.error("no runtime: deploys are refused until this is fixed", reason=str(exc))
        runtime = UnavailableRuntime(str(exc))
    try:
        yield runtime
    finally:
        await runtime.close()


async def build_runtime(settings: Settings, model_gateway_port: int | None = None) -> Runtime:
    if settings.runtime == "process":
        from provisioner.openclaw.install import find_install
        from provisioner.runtimes.process import ProcessRuntime

        install = find_install(settings.resolved_runtime_dir, settings.openclaw_version)
        if install is None:
            raise RuntimeUnavailable(
                f"OpenClaw {settings.openclaw_version} is not installed in {settings.resolved_runtime_dir}: "
                "run `clawfleet runtime install` (make run does it for you)"
            )
        log.warning(
            "process runtime: gateways run as this user, not isolated from each other; "
            "use it to try ClawFleet or for a single trusted operator, and the docker runtime for production"
        )
        return ProcessRuntime(settings.data_dir, install, shared_compile_cache=settings.shared_compile_cache)
    return await _docker_runtime(settings, model_gateway_port)


async def _docker_runtime(settings: Settings, model_gateway_port: int | None) -> Runtime:
    """One engine client for the process; refused with the reason when the engine or the image
    is not there."""
    import aiodocker

    from provisioner.runtimes.docker import DockerRuntime

    docker = aiodocker.Docker(url=settings.docker_url)
    try:
        await docker.version()
    except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
        await docker.close()
        raise RuntimeUnavailable(f"the Docker engine at {settings.docker_url or 'its default address'} does not "
                                 f"answer ({type(exc).__name__}); check CLAWFLEET_DOCKER_URL") from None
    try:
        await docker.images.inspect(settings.openclaw_image)
    except aiodocker.DockerError:
        await docker.close()
        raise RuntimeUnavailable(f"the image {settings.openclaw_image} is not on the Docker engine: "
                                 "run `clawfleet image build` (or --offline)") from None
    try:
        await guard_egress(settings, model_gateway_port)
    except RuntimeUnavailable:
        await docker.close()
        raise
    return DockerRuntime(docker, docker_config(settings))


async def guard_egress(settings: Settings, model_gateway_port: int | None = None) -> None:
    """Install the host firewall rules when the platform can; otherwise say plainly that they are
    not enforced (or refuse to run gateways, with CLAWFLEET_DOCKER_EGRESS_GUARD=required)."""
    if settings.docker_egress_guard == "off":
        log.warning("egress guard off (CLAWFLEET_DOCKER_EGRESS_GUARD=off): instances can reach the metadata "
                    "service and the host's own addresses")
        return
    rules = egress_rules(settings, model_gateway_port)
    reason = egress.unsupported_reason(settings.docker_url)
    if reason is None:
        try:
            await egress.install(rules)
        except egress.EgressGuardError as exc:
            reason = str(exc)
        else:
            log.info("egress guard installed", pool=rules.pool, denied=list(rules.denied))
            return
    if settings.docker_egress_guard == "required":
        raise RuntimeUnavailable(f"the egress guard cannot be installed ({reason}); install it on the engine's "
                                 "host (`clawfleet egress-guard --print`) and set CLAWFLEET_DOCKER_EGRESS_GUARD=auto")
    log.warning("egress guard not enforced by the platform: instances can reach the metadata service and the "
                "host unless the host's firewall stops them; `clawfleet egress-guard --print` gives the rules",
                reason=reason)


def docker_config(settings: Settings) -> DockerConfig:
    from provisioner.runtimes.docker import DockerConfig

    join = settings.docker_join_container
    if settings.docker_endpoint == "network" and join is None:
        join = socket.gethostname()  # inside a container: its own id, which the engine knows it by
    return DockerConfig(image=settings.openclaw_image, version=__version__, endpoint=settings.docker_endpoint,
                        subnet_pool=settings.docker_subnet_pool, join_container=join)


def egress_rules(settings: Settings, model_gateway_port: int | None = None) -> egress.EgressRules:
    """The guard's rules; instances may reach the host on the model gateway's port alone."""
    port = model_gateway_port or settings.model_gateway_port
    return egress.EgressRules(settings.docker_subnet_pool, tuple(settings.docker_egress_deny),
                              open_ports=(port,) if port else ())
