"""Builds the provisioner from settings: runtime, manager, services (one per process)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.access import AccessConfig, AccessPolicy
from accounts.invites import Invites
from accounts.users import Accounts
from clawfleet.settings import TELEGRAM_API_URL, Settings
from db.sealing import KeyRing
from provisioner.entitlements import Entitlements, OperatorDefaults
from provisioner.manager import InstanceManager, ManagerConfig
from provisioner.notify import Notifier
from provisioner.reconcile.decisions import Backoff
from provisioner.reconcile.reconciler import Reconciler, ReconcilerConfig
from provisioner.runtimes.base import Runtime, UnavailableRuntime
from provisioner.service import InstanceService, ServiceConfig

log = structlog.get_logger(__name__)


class RuntimeUnavailable(Exception):
    """The configured runtime cannot run here; the message says what to do."""


@dataclass
class Provisioner:
    accounts: Accounts
    instances: InstanceService
    manager: InstanceManager
    runtime: Runtime
    reconciler: Reconciler | None  # None while no runtime can run gateways here
    invites: Invites
    access: AccessPolicy


async def build_runtime(settings: Settings) -> Runtime:
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
        return ProcessRuntime(settings.data_dir, install)
    return await _docker_runtime(settings)


async def _docker_runtime(settings: Settings) -> Runtime:
    """One engine client for the process; refused with the reason when the engine or the image
    is not there, so the rest of the platform still starts."""
    import aiodocker

    from clawfleet import __version__
    from provisioner.runtimes.docker import DockerConfig, DockerRuntime

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
    join = settings.docker_join_container
    if settings.docker_endpoint == "network" and join is None:
        join = socket.gethostname()  # inside a container: its own id, which the engine knows it by
    try:
        await _guard_egress(settings)
    except RuntimeUnavailable:
        await docker.close()
        raise
    return DockerRuntime(docker, DockerConfig(
        image=settings.openclaw_image, version=__version__, endpoint=settings.docker_endpoint,
        subnet_pool=settings.docker_subnet_pool, join_container=join))


async def _guard_egress(settings: Settings) -> None:
    """Install the host firewall rules when the platform can; otherwise say plainly that they are
    not enforced (or refuse to run gateways, with CLAWFLEET_DOCKER_EGRESS_GUARD=required)."""
    from provisioner.runtimes import egress

    if settings.docker_egress_guard == "off":
        log.warning("egress guard off (CLAWFLEET_DOCKER_EGRESS_GUARD=off): instances can reach the metadata "
                    "service and the host's own addresses")
        return
    rules = egress.EgressRules(settings.docker_subnet_pool, tuple(settings.docker_egress_deny))
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


@asynccontextmanager
async def open_provisioner(settings: Settings, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing,
                           *, runtime: Runtime | None = None, entitlements: Entitlements | None = None,
                           notifier: Notifier | None = None) -> AsyncIterator[Provisioner]:
    built = runtime is None  # a runtime made here is closed here
    if runtime is None:
        try:
            runtime = await build_runtime(settings)
        except RuntimeUnavailable as exc:
            log.error("no runtime: deploys are refused until this is fixed", reason=str(exc))
            runtime = UnavailableRuntime(str(exc))
    entitlements = entitlements or OperatorDefaults(settings.max_instances_per_user)
    api_root = settings.telegram_api_url if settings.telegram_api_url != TELEGRAM_API_URL else None
    invites = Invites(sessions)
    access = AccessPolicy(AccessConfig(settings.access, frozenset(settings.allowed_telegram_ids),
                                       frozenset(settings.allowed_emails)), invites)
    async with aiohttp.ClientSession() as http:
        manager = InstanceManager(
            sessions, runtime, keyring,
            ManagerConfig(
                start_timeout_s=settings.start_timeout_s,
                max_concurrent_starts=settings.max_concurrent_starts,
                telegram_api_root=api_root,
                provider_urls=dict(settings.provider_urls),
                lease_ttl_s=settings.lease_ttl_s,
                backoff=Backoff(settings.backoff_base_s, settings.backoff_max_s),
                crash_at=settings.crash_at,
            ),
            http,
            notifier=notifier,
        )
        service = InstanceService(
            sessions, keyring, manager, entitlements,
            ServiceConfig(
                telegram_api_url=settings.telegram_api_url,
                provisioning_bot_token=settings.telegram_bot_token,
                memory_budget_mb=settings.memory_budget_mb,
                public_url=settings.public_url,
                instance_domain=settings.instance_domain,
                provider_check_urls=dict(settings.provider_check_urls),
            ),
            http,
            admission=access,
        )
        reconciler = None
        if runtime.unavailable_reason is None:
            reconciler = Reconciler(sessions, manager, ReconcilerConfig(
                interval_s=settings.reconcile_interval_s, lease_ttl_s=settings.lease_ttl_s), http)
        reconciling = asyncio.create_task(reconciler.run(), name="reconciler") if reconciler else None
        try:
            yield Provisioner(Accounts(sessions), service, manager, runtime, reconciler, invites, access)
        finally:
            if reconciling is not None:
                reconciling.cancel()
                await asyncio.gather(reconciling, return_exceptions=True)
            await manager.close()
            if built:
                await runtime.close()
