"""One OpenClaw gateway as every runtime launches it: its openclaw.json, its environment, its
secret files and the port it listens on, built from a LaunchRequest and the few facts in which
runtimes differ (a `Placement`: how it binds, where its state, config, secrets and log file are,
how big Node's heap is).

A runtime adds only what is truly its own around this: the process runtime a HOME, TMPDIR and
XDG dirs inside the instance dir; the docker runtime the container around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.model_access import with_platform_host
from provisioner.openclaw.config import GatewaySpec, render_config, secret_files
from provisioner.runtimes.base import LaunchRequest

SEMI_SPACE_MB = 8  # lean profile: Node's young generation kept small


@dataclass(frozen=True)
class Placement:
    """Where a runtime puts a gateway, in the gateway's own view of its filesystem and network."""

    bind: str  # "loopback" (on the host itself) or "lan" (inside a network namespace of its own)
    state_dir: Path  # OPENCLAW_STATE_DIR
    config_path: Path  # OPENCLAW_CONFIG_PATH, where openclaw.json is written
    log_file: Path  # logging.file
    secrets_dir: Path  # where the runtime puts `Gateway.secret_files` before each start
    heap_mb: int  # Node's old space (--max-old-space-size)
    port: int | None = None  # the port it listens on; None: the request's own (nothing in between)
    # The platform's address as the gateway sees it, when known: the proxy's connections come
    # from it (then the owner is signed in to the Control UI by the proxy, trusted-proxy auth;
    # None keeps token auth), and the gateway reaches the platform's model gateway at it.
    proxy_address: str | None = None


@dataclass(frozen=True)
class Gateway:
    config: dict[str, Any]  # openclaw.json, with no secret in it
    env: dict[str, str]  # every variable the gateway reads: none holds a secret
    secret_files: dict[str, str]  # file name in the placement's secrets_dir -> content
    port: int  # the port it listens on


def placement_env(place: Placement) -> dict[str, str]:
    """The gateway's variables that hold no secret: also what an `openclaw` CLI run against the
    instance needs."""
    return {
        "OPENCLAW_STATE_DIR": str(place.state_dir),
        "OPENCLAW_CONFIG_PATH": str(place.config_path),
        "NODE_OPTIONS": f"--max-old-space-size={place.heap_mb} --max-semi-space-size={SEMI_SPACE_MB}",
    }


def _owner(request: LaunchRequest, place: Placement) -> str | None:
    """Who the proxy signs in to the Control UI: the owner's id, when the proxy can (its address
    and the instance's origin known)."""
    if request.owner_id is None or request.control_ui_origin is None or place.proxy_address is None:
        return None
    return str(request.owner_id)


def build_gateway(request: LaunchRequest, place: Placement) -> Gateway:
    port = request.port if place.port is None else place.port
    spec = GatewaySpec(
        port=port,
        provider=request.provider,
        model=request.model,
        state_dir=place.state_dir,
        log_file=place.log_file,
        secrets_dir=place.secrets_dir,
        bind=place.bind,
        telegram=request.bot_token is not None,
        telegram_allow_from=request.telegram_allow_from,
        telegram_api_root=request.telegram_api_root,
        model_url=with_platform_host(request.model_url, place.proxy_address) if request.model_url else None,
        control_ui_origins=(request.control_ui_origin,) if request.control_ui_origin else (),
        owner=_owner(request, place),
        proxy_address=place.proxy_address if _owner(request, place) else None,
    )
    return Gateway(config=render_config(spec), env=placement_env(place),
                   secret_files=secret_files(spec, request.gateway_token, request.bot_token, request.model_credential),
                   port=port)
