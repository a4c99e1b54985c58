"""The runtime contract, after JupyterHub's Spawner.

A runtime only does backend I/O: start a gateway, stop it, say what it observes, stream logs,
run the `openclaw` CLI inside an instance, remove it. Timeouts, readiness checks, cleanup on
failure and state saving belong to the manager. Each runtime keeps what it needs to find an
instance again in a JSON-able `state` dict (with a "version" key) that the manager persists on
the instance row. Missing objects and already-done actions count as success.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import SecretStr


class GatewayState(StrEnum):
    """What a runtime sees of a gateway. Words of its own: "running" is an instance status,
    which also needs the gateway to be ready (the manager decides it)."""

    UP = "up"  # the gateway's process or container runs
    DOWN = "down"  # it exists (instance dir, container) but does not run
    GONE = "gone"  # nothing there


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a runtime needs to start one instance's gateway."""

    instance_id: uuid.UUID
    port: int
    provider: str
    model: str
    model_credential: SecretStr  # for the instance's model gateway route (provisioner.model_access)
    gateway_token: SecretStr
    bot_token: SecretStr | None = None
    telegram_allow_from: int | None = None
    telegram_api_root: str | None = None
    # the provider base URL the gateway calls: its model gateway route (model_access.route_url,
    # the host filled in by the runtime); runtime tests give a fake model's URL instead
    model_url: str | None = None
    memory_mb: int = 1536
    cpus: float = 1.0
    owner_id: uuid.UUID | None = None  # labels the docker runtime's objects; the Control UI's signed-in owner
    control_ui_origin: str | None = None  # the instance's own address, where its owner opens the Control UI


@dataclass(frozen=True)
class Started:
    endpoint_url: str  # where the platform reaches the gateway's HTTP port
    state: dict[str, Any]


@dataclass(frozen=True)
class Observed:
    state: GatewayState
    detail: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class ResourceUse:
    """What a gateway (with every helper process it runs) uses at one moment."""

    memory_bytes: int  # resident memory, as counted against its limit
    cpu_seconds: float  # CPU time used since it started: two samples' difference is its CPU load


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


@dataclass
class Listed:
    """One gateway found by `list_all`, with the instance id it carries; `info` is the runtime
    state that re-adopts it."""

    instance_id: uuid.UUID
    observed: Observed
    info: dict[str, Any] = field(default_factory=dict)


class Runtime(abc.ABC):
    name: str
    unavailable_reason: str | None = None  # set when this runtime cannot start gateways here

    async def close(self) -> None:
        """Let go of what the runtime holds open (an engine client); gateways keep running."""

    @abc.abstractmethod
    async def start(self, request: LaunchRequest, state: dict[str, Any]) -> Started:
        """Start the gateway (already running with the same state: re-adopt it)."""

    @abc.abstractmethod
    async def stop(self, instance_id: uuid.UUID, state: dict[str, Any], timeout: float) -> None:
        """Stop it: ask politely, then force after `timeout` seconds."""

    @abc.abstractmethod
    async def status(self, instance_id: uuid.UUID, state: dict[str, Any]) -> Observed: ...

    @abc.abstractmethod
    async def list_all(self) -> list[Listed]:
        """Every gateway this runtime runs, in one call (the reconciler's view)."""

    @abc.abstractmethod
    def logs(self, instance_id: uuid.UUID, state: dict[str, Any], tail: int, follow: bool) -> AsyncIterator[str]:
        """Lines of the gateway's log, oldest first; with `follow`, new lines as they come."""

    @abc.abstractmethod
    async def exec(self, instance_id: uuid.UUID, state: dict[str, Any], argv: list[str]) -> ExecResult:
        """Run an `openclaw` CLI command against the instance."""

    @abc.abstractmethod
    async def approve_pairing(self, instance_id: uuid.UUID, state: dict[str, Any], code: str) -> int | None:
        """Let the sender of the pending Telegram pairing request with `code` (upper case, not
        expired) talk to the gateway as its owner: its openclaw.json is rewritten to allow only
        them (provisioner.openclaw.pairing.with_owner), which OpenClaw reloads by itself. Their
        Telegram user id; None, changing nothing, when no pending request has that code."""

    @abc.abstractmethod
    async def remove(self, instance_id: uuid.UUID, state: dict[str, Any], keep_data: bool) -> None:
        """Stop it and delete what it used; with `keep_data`, its data stays (for restoring)."""

    async def discard_kept_data(self, instance_id: uuid.UUID) -> None:
        """Delete the data `remove(keep_data=True)` kept of an instance (its retention is over);
        nothing when there is none."""
        return None

    @abc.abstractmethod
    def endpoint(self, state: dict[str, Any]) -> str:
        """Where the platform reaches the gateway described by `state` (one re-adopted, say)."""

    async def sample(self, instance_id: uuid.UUID, state: dict[str, Any]) -> ResourceUse | None:
        """What the gateway uses now; None when it does not run or it cannot be known."""
        return None

    # -- instance backups (provisioner/runtimes/state_archives.py says how) ------------------------
    def archive_state(self, instance_id: uuid.UUID, state: dict[str, Any]) -> AsyncIterator[bytes]:
        """The bytes of a verified `openclaw backup create` archive of the instance's state, made
        while its gateway runs or not; what it wrote to make it is gone once this is closed."""
        raise NotImplementedError(f"the {self.name} runtime cannot back up instances")

    async def unpack_state(self, instance_id: uuid.UUID, state: dict[str, Any], archive: AsyncIterator[bytes],
                           size: int) -> None:
        """With the gateway stopped: `openclaw backup restore` the archive (`size` bytes) into a
        fresh directory and put its state in place of the instance's, the replaced state kept
        aside until `settle_state`."""
        raise NotImplementedError(f"the {self.name} runtime cannot restore instances")

    async def settle_state(self, instance_id: uuid.UUID, state: dict[str, Any], keep_restored: bool) -> None:
        """After a restore: drop the state kept aside (`keep_restored`), or put it back in place
        of the restored one. Nothing when nothing is kept aside."""
        raise NotImplementedError(f"the {self.name} runtime cannot restore instances")

    def matches(self, found: dict[str, Any], state: dict[str, Any]) -> bool:
        """Whether a gateway found by `list_all` (its `info`) is the one `state` records."""
        return all(state.get(key) == value for key, value in found.items())


class UnavailableRuntime(Runtime):
    """Stands in when the configured runtime cannot run here, so the rest of the platform
    (dashboard, API, bot) still works and every deploy is refused with the reason."""

    name = "unavailable"

    def __init__(self, reason: str) -> None:
        self.unavailable_reason = reason

    async def start(self, request: LaunchRequest, state: dict[str, Any]) -> Started:
        raise RuntimeError(self.unavailable_reason)

    async def stop(self, instance_id: uuid.UUID, state: dict[str, Any], timeout: float) -> None:
        return None

    async def status(self, instance_id: uuid.UUID, state: dict[str, Any]) -> Observed:
        return Observed(GatewayState.GONE, self.unavailable_reason or "")

    async def list_all(self) -> list[Listed]:
        return []

    async def logs(self, instance_id: uuid.UUID, state: dict[str, Any], tail: int,
                   follow: bool) -> AsyncIterator[str]:
        return
        yield  # an empty async generator

    async def exec(self, instance_id: uuid.UUID, state: dict[str, Any], argv: list[str]) -> ExecResult:
        return ExecResult(1, self.unavailable_reason or "")

    async def approve_pairing(self, instance_id: uuid.UUID, state: dict[str, Any], code: str) -> int | None:
        return None

    async def remove(self, instance_id: uuid.UUID, state: dict[str, Any], keep_data: bool) -> None:
        return None

    def endpoint(self, state: dict[str, Any]) -> str:
        return ""
