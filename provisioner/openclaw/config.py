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
  - provider API key: still the provider's own variable (ANTHROPIC_API_KEY, ...), read by the
    bundled provider plugins by themselves; explicit (non-bundled) provider entries reference it
    as an `env` SecretRef `apiKey`. Provider keys leave the instances once the platform's model
    gateway holds them.
Files are readable by whatever runs as the gateway's user, agent tools included; isolation
between instances comes from the runtime (the process runtime runs every gateway as one user).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from db.private_files import make_missing_dirs, open_private, private_dir
from provisioner.providers import Provider, get_provider

SECRET_PROVIDER = "clawfleet"  # the env secret provider's alias inside openclaw.json
GATEWAY_TOKEN_FILE = "gateway-token"  # file names inside the secrets directory
BOT_TOKEN_FILE = "telegram-bot-token"
LOG_MAX_FILE_BYTES = 10 * 1024 * 1024
# Always allowed: it owns the agent's memory slot and loads even when not listed. Listing it also
# keeps plugins.allow non-empty, because an empty list means "no restriction" (40 plugins, measured).
MEMORY_PLUGIN = "memory-core"


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
    provider_base_url: str | None = None  # models.providers.<id>.baseUrl override (tests: a fake model)
    control_ui: bool = True
    control_ui_origins: tuple[str, ...] = ()  # browser origins of the Control UI behind a proxy


def render_config(spec: GatewaySpec) -> dict[str, Any]:
    """The whole openclaw.json as a JSON-able dict. Contains no secret value."""
    provider = get_provider(spec.provider)
    if spec.bind not in ("loopback", "lan"):
        raise ValueError(f"bind must be 'loopback' or 'lan', not {spec.bind!r}")
    refs = _SecretRefs()
    control_ui: dict[str, Any] = {"enabled": spec.control_ui}
    if spec.control_ui and spec.control_ui_origins:
        control_ui["allowedOrigins"] = list(spec.control_ui_origins)
    config: dict[str, Any] = {
        "gateway": {
            "mode": "local",
            "port": spec.port,
            "bind": spec.bind,
            "auth": {"mode": "token", "token": refs.file(spec.secrets_dir / GATEWAY_TOKEN_FILE)},
            "controlUi": control_ui,
        },
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


class _SecretRefs:
    """Makes SecretRefs and the secret providers that resolve exactly them: one env provider
    whose allowlist holds the variables referenced, one single-value file provider per file."""

    def __init__(self) -> None:
        self.variables: list[str] = []
        self.files: dict[str, Path] = {}  # provider alias -> file

    def env(self, variable: str) -> dict[str, str]:
        if variable not in self.variables:
            self.variables.append(variable)
        return {"source": "env", "provider": SECRET_PROVIDER, "id": variable}

    def file(self, path: Path) -> dict[str, str]:
        alias = f"{SECRET_PROVIDER}-{path.name}"
        self.files[alias] = path
        return {"source": "file", "provider": alias, "id": "value"}

    def providers(self) -> dict[str, Any]:
        providers: dict[str, Any] = {}
        if self.variables:
            providers[SECRET_PROVIDER] = {"source": "env", "allowlist": self.variables}
        for alias, path in self.files.items():
            providers[alias] = {"source": "file", "path": str(path), "mode": "singleValue"}
        return providers


def _plugins(spec: GatewaySpec, provider: Provider) -> list[str]:
    plugins = [provider.openclaw_id] if provider.bundled else []  # non-bundled: no plugin to name
    if spec.telegram:
        plugins.append("telegram")
    return [*plugins, MEMORY_PLUGIN]


def _provider_entry(spec: GatewaySpec, provider: Provider, refs: _SecretRefs) -> dict[str, Any]:
    # OpenClaw's own agent runtime, always: left implicit, OpenAI's official endpoint selects the
    # Codex harness, whose plugin the lean profile does not load.
    entry: dict[str, Any] = {"agentRuntime": {"id": "openclaw"}}
    if provider.bundled and spec.provider_base_url is None:
        return entry  # an overlay on the bundled provider: its endpoint, catalog and env key stay
    entry["baseUrl"] = spec.provider_base_url or provider.base_url
    entry["api"] = provider.api
    if not provider.bundled:
        entry["apiKey"] = refs.env(provider.key_env)
    # A provider with its own baseUrl must list its models (the schema says so for custom
    # providers, and a bundled provider's catalog does not follow it to another endpoint).
    entry["models"] = [{"id": model, "name": model} for model in _offered(provider, spec.model)]
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


def secret_env(spec: GatewaySpec, api_key: SecretStr) -> dict[str, str]:
    """The environment variable that carries the provider's API key (see the module docstring)."""
    return {get_provider(spec.provider).key_env: api_key.get_secret_value()}


def secret_files(spec: GatewaySpec, gateway_token: SecretStr, bot_token: SecretStr | None) -> dict[str, str]:
    """The gateway's secret files (name in `secrets_dir` -> content), each referenced by the config."""
    files = {GATEWAY_TOKEN_FILE: gateway_token.get_secret_value()}
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


def write_private(path: Path, text: str) -> None:
    """Write a file with mode 0600, replacing it atomically (a new inode: one hard link)."""
    make_missing_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = open_private(tmp, os.O_WRONLY | os.O_EXCL)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
