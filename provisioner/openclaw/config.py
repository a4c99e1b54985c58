"""`openclaw.json` for one instance (OpenClaw 2026.9.x; its schema rejects unknown keys).

Secrets: none is ever written into the file, and the gateway's own ones never sit in its
environment either, where `docker inspect` and, for gateways of one OS user,
`/proc/<pid>/environ` show them. Each is a private file of its own (`secret_files`) in the
instance's secrets directory, which the runtime writes before every start:
  - gateway token: `gateway.auth.token` is a `file` SecretRef to `gateway-token`, read by a
    `singleValue` file provider. A ref rather than OpenClaw's env fallback: refs win over it, and
    an unresolvable gateway-auth ref fails closed (OpenClaw's secrets runtime docs), so auth never
    depends on what else is in the env. OpenClaw refuses the file unless it is a regular file of
    the gateway's user, mode 0600 (measured: 0644 stops the start), with one hard link.
  - Telegram bot token: `channels.telegram.tokenFile` -> `telegram-bot-token` (a regular file;
    OpenClaw rejects symlinks).
  - no provider API key at all: the provider's `baseUrl` is the instance's route on the
    platform's model gateway, which holds the key (provisioner.model_access), and `apiKey` is a
    file SecretRef to `model-credential`, the instance's credential for that route alone. So
    every provider, bundled or not, is an explicit entry with its API style and models.
Files are readable by whatever runs as the gateway's user, agent tools included; isolation
between instances comes from the runtime (the process runtime runs every gateway as one user).

Owner sign-in (`GatewaySpec.owner`): the gateway trusts ClawFleet's reverse proxy to say who the
browser is, so the owner opens their Control UI with no token to copy and no device-pairing prompt
(OpenClaw's trusted-proxy mode, docs/gateway/trusted-proxy-auth.md; rules measured on 2026.9.6):
  - `gateway.trustedProxies` holds only the address the proxy connects from (`proxy_address`:
    127.0.0.1 in the process runtime, the docker host's bridge address in the docker runtime);
    a loopback proxy also needs `allowLoopback`. `allowUsers` holds only the owner.
  - The proxy overwrites OWNER_HEADER with the owner's id once it has checked the session, drops
    whatever the client sent as forwarded headers or scopes, and sends `owner_request_headers`.
  - Every request from a trusted proxy must name its client in X-Forwarded-For, and that client
    must not be loopback: OpenClaw answers 403 `proxy_attribution_required` otherwise, even for
    the static page and /readyz (`Forwarded` and `X-Real-IP` are not read). A browser on the
    laptop itself is loopback, so the proxy names it LOCAL_CLIENT instead; the address only
    becomes the rate-limit key, the device record's remote IP and the audit log's ip=.
  - The browser's device is approved on its first connect with OWNER_SCOPES, never
    `operator.admin`: the owner chats and sees status but cannot rewrite this generated config.
    The proxy also caps every session to them (SCOPES_HEADER), devices paired before included.
  - `controlUi.allowedOrigins` must name the instance's origin: other Origins are refused.
  - The platform's own callers that do not go through the proxy (`openclaw` CLI runs inside the
    instance, on loopback) use `gateway.auth.password`, a file SecretRef to `gateway-password`
    holding the instance's gateway secret; OpenClaw refuses to start with a token in this mode.
  - Probes from the proxy's address (the docker runtime's) need X-Forwarded-For too for /readyz
    and /startupz (PROBE_HEADERS, which every probe sends); /healthz answers anyway.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from db.private_files import private_dir, write_private
from provisioner.providers import Provider, get_provider

SECRET_PROVIDER = "clawfleet"  # the prefix of the file secret providers' aliases inside openclaw.json
GATEWAY_TOKEN_FILE = "gateway-token"  # file names inside the secrets directory
GATEWAY_PASSWORD_FILE = "gateway-password"  # the same gateway secret, for owner sign-in's internal callers
BOT_TOKEN_FILE = "telegram-bot-token"
MODEL_CREDENTIAL_FILE = "model-credential"  # the instance's credential for its model gateway route
LOG_MAX_FILE_BYTES = 10 * 1024 * 1024
# Always allowed: it owns the agent's memory slot and loads even when not listed. Listing it also
# keeps plugins.allow non-empty, because an empty list means "no restriction" (40 plugins, measured).
MEMORY_PLUGIN = "memory-core"
# Owner sign-in through the proxy (module docstring).
OWNER_HEADER = "x-clawfleet-user"
SCOPES_HEADER = "x-openclaw-scopes"
FORWARDED_FOR = "X-Forwarded-For"
# The client the proxy names when the browser is on loopback: RFC 6666's discard-only prefix,
# never a real peer (unlike documentation ranges, which some networks do use).
LOCAL_CLIENT = "100::1"
OWNER_SCOPES = ("operator.read", "operator.write", "operator.approvals", "operator.questions")


@dataclass(frozen=True)
class GatewaySpec:
    port: int
    provider: str  # provider id (providers table)
    model: str  # model id as offered by the provider table
    state_dir: Path  # the instance's OpenClaw state dir (workspace goes inside it)
    log_file: Path  # logging.file for this gateway
    secrets_dir: Path  # where the gateway reads its secret files (secret_files)
    bind: str = "loopback"  # "loopback" (process runtime) or "lan" (container)
    telegram: bool = False  # the instance has a Telegram bot token
    telegram_allow_from: int | None = None  # owner's Telegram user id -> allowlist; None -> pairing
    telegram_api_root: str | None = None  # Bot API base when not Telegram's own (tests: a loopback fake)
    # models.providers.<id>.baseUrl: the instance's model gateway route (or, in runtime tests,
    # a fake model); None: the provider's own endpoint
    model_url: str | None = None
    control_ui: bool = True
    control_ui_origins: tuple[str, ...] = ()  # browser origins of the Control UI behind a proxy
    owner: str | None = None  # the owner's id as the proxy names it (OWNER_HEADER); None: token auth
    proxy_address: str | None = None  # the IP address the proxy connects to the gateway from (with owner)


def render_config(spec: GatewaySpec) -> dict[str, Any]:
    """The whole openclaw.json as a JSON-able dict. Contains no secret value."""
    provider = get_provider(spec.provider)
    if spec.bind not in ("loopback", "lan"):
        raise ValueError(f"bind must be 'loopback' or 'lan', not {spec.bind!r}")
    refs = _SecretRefs()
    control_ui: dict[str, Any] = {"enabled": spec.control_ui}
    if spec.control_ui and spec.control_ui_origins:
        control_ui["allowedOrigins"] = list(spec.control_ui_origins)
    gateway: dict[str, Any] = {"mode": "local", "port": spec.port, "bind": spec.bind}
    if spec.owner is None:
        gateway["auth"] = {"mode": "token", "token": refs.file(spec.secrets_dir / GATEWAY_TOKEN_FILE)}
    else:
        proxy = _proxy_network(spec)
        gateway["trustedProxies"] = [str(proxy)]
        gateway["auth"] = _owner_auth(spec, proxy, refs)
    gateway["controlUi"] = control_ui
    config: dict[str, Any] = {
        "gateway": gateway,
        "agents": {
            "defaults": {
                "model": {"primary": provider.model_ref(spec.model)},
                "workspace": str(spec.state_dir / "workspace"),
            },
        },
        "models": {
            # Lean profile: no hosted catalog refresh at start (it would call the internet).
            "catalogRefresh": {"enabled": False},
            "providers": {provider.openclaw_id: _provider_entry(spec, provider, refs)},
        },
        "logging": {"file": str(spec.log_file), "maxFileBytes": LOG_MAX_FILE_BYTES},
        # Lean profile (measured ~20% less memory): only the plugins this instance uses.
        "plugins": {"allow": _plugins(spec, provider)},
        "update": {"checkOnStart": False},  # the pinned release is updated by ClawFleet, not itself
    }
    if spec.telegram:
        config["channels"] = {"telegram": _telegram(spec)}
    config["secrets"] = {"providers": refs.providers()}
    return config


def _proxy_network(spec: GatewaySpec) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The proxy's address as a one-address network; refuses a spec owner sign-in cannot work with."""
    owner = spec.owner or ""
    if not owner.strip() or owner != owner.strip():
        raise ValueError("the owner's id must be non-blank, without surrounding spaces (OpenClaw trims the header)")
    if spec.proxy_address is None:
        raise ValueError("owner sign-in needs the proxy's address (proxy_address)")
    if spec.control_ui and not spec.control_ui_origins:
        raise ValueError("owner sign-in to the Control UI needs its origin (control_ui_origins)")
    try:
        address = ipaddress.ip_address(spec.proxy_address)
    except ValueError:
        raise ValueError(f"proxy_address must be one IP address, not {spec.proxy_address!r}") from None
    return ipaddress.ip_network(address)  # that address alone: a /32 or a /128


def _owner_auth(spec: GatewaySpec, proxy: ipaddress.IPv4Network | ipaddress.IPv6Network,
                refs: _SecretRefs) -> dict[str, Any]:
    trusted_proxy: dict[str, Any] = {
        "userHeader": OWNER_HEADER,
        "allowUsers": [spec.owner],
        # The owner's browser is approved on its first connect, with no admin scope.
        "deviceAutoApprove": {"enabled": True, "scopes": list(OWNER_SCOPES)},
    }
    if proxy.network_address.is_loopback:
        trusted_proxy["allowLoopback"] = True  # the process runtime: the proxy and the gateway share the host
    return {
        "mode": "trusted-proxy",
        "trustedProxy": trusted_proxy,
        "password": refs.file(spec.secrets_dir / GATEWAY_PASSWORD_FILE),  # the platform's callers on loopback
    }


def owner_request_headers(owner: str, client_address: str | None) -> dict[str, str]:
    """What the proxy sends the gateway, besides the request's own headers, on every request and
    WebSocket upgrade of the owner's session (after dropping the client's forwarded, OWNER_HEADER
    and SCOPES_HEADER headers). `client_address`: the browser's address as the platform resolved it."""
    return {OWNER_HEADER: owner, FORWARDED_FOR: _named_client(client_address),
            SCOPES_HEADER: ",".join(OWNER_SCOPES)}


# What every probe of the platform's own (/readyz, /healthz) sends: a gateway with owner sign-in
# answers a request from its trusted proxy's address only when it names a non-loopback client,
# and the docker runtime's probes come from that address (the bridge's); from anywhere else the
# header is ignored, so one set serves every gateway, token auth included.
PROBE_HEADERS = {FORWARDED_FOR: LOCAL_CLIENT}


def _named_client(address: str | None) -> str:
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return LOCAL_CLIENT
    mapped = client.ipv4_mapped if isinstance(client, ipaddress.IPv6Address) else None
    return LOCAL_CLIENT if (mapped or client).is_loopback else str(client)


class _SecretRefs:
    """Makes SecretRefs and the secret providers that resolve exactly them: one single-value
    file provider per file."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}  # provider alias -> file

    def file(self, path: Path) -> dict[str, str]:
        alias = f"{SECRET_PROVIDER}-{path.name}"
        self.files[alias] = path
        return {"source": "file", "provider": alias, "id": "value"}

    def providers(self) -> dict[str, Any]:
        providers: dict[str, Any] = {}
        for alias, path in self.files.items():
            providers[alias] = {"source": "file", "path": str(path), "mode": "singleValue"}
        return providers


def _plugins(spec: GatewaySpec, provider: Provider) -> list[str]:
    plugins = [provider.openclaw_id] if provider.bundled else []  # non-bundled: no plugin to name
    if spec.telegram:
        plugins.append("telegram")
    return [*plugins, MEMORY_PLUGIN]


def _provider_entry(spec: GatewaySpec, provider: Provider, refs: _SecretRefs) -> dict[str, Any]:
    entry: dict[str, Any] = {
        # OpenClaw's own agent runtime, always: left implicit, OpenAI's official endpoint selects
        # the Codex harness, whose plugin the lean profile does not load.
        "agentRuntime": {"id": "openclaw"},
        "baseUrl": spec.model_url or provider.base_url,
        "api": provider.api,
        "apiKey": refs.file(spec.secrets_dir / MODEL_CREDENTIAL_FILE),
        # A provider with its own baseUrl must list its models (the schema says so for custom
        # providers, and a bundled provider's catalog does not follow it to another endpoint).
        "models": [{"id": model, "name": model} for model in _offered(provider, spec.model)],
    }
    if provider.route_headers:
        entry["headers"] = dict(provider.route_headers)
    return entry


def _offered(provider: Provider, model: str) -> tuple[str, ...]:
    # A model the table no longer offers stays runnable for instances already using it.
    return provider.models if model in provider.models else (*provider.models, model)


def _telegram(spec: GatewaySpec) -> dict[str, Any]:
    telegram: dict[str, Any] = {
        "enabled": True,
        "tokenFile": str(spec.secrets_dir / BOT_TOKEN_FILE),
        "groupPolicy": "disabled",  # a private assistant: no group chats
    }
    if spec.telegram_allow_from is not None:
        # ClawFleet knows its owner: the bot answers them at once, no pairing step.
        telegram["dmPolicy"] = "allowlist"
        telegram["allowFrom"] = [spec.telegram_allow_from]
    else:
        telegram["dmPolicy"] = "pairing"
    if spec.telegram_api_root is not None:
        telegram["apiRoot"] = spec.telegram_api_root
    return telegram


def secret_files(spec: GatewaySpec, gateway_token: SecretStr, bot_token: SecretStr | None,
                 model_credential: SecretStr) -> dict[str, str]:
    """The gateway's secret files (name in `secrets_dir` -> content), each referenced by the config."""
    gateway_file = GATEWAY_TOKEN_FILE if spec.owner is None else GATEWAY_PASSWORD_FILE
    files = {gateway_file: gateway_token.get_secret_value(),
             MODEL_CREDENTIAL_FILE: model_credential.get_secret_value()}
    if spec.telegram:
        if bot_token is None:
            raise ValueError("a Telegram channel needs its bot token")
        files[BOT_TOKEN_FILE] = bot_token.get_secret_value()
    return files


def write_secret_files(directory: Path, files: dict[str, str]) -> None:
    """Make `directory` (0700) hold exactly these files, each 0600 and with one hard link as
    OpenClaw requires; a secret no longer used (a bot token removed) is deleted."""
    private_dir(directory)
    for stale in set(os.listdir(directory)) - set(files):
        (directory / stale).unlink()
    for name, content in files.items():
        write_private(directory / name, content)


def write_config(config: dict[str, Any], path: Path) -> None:
    """Write a rendered config with mode 0600 (OpenClaw never tightens it), replacing atomically."""
    write_private(path, json.dumps(config, indent=2) + "\n")
