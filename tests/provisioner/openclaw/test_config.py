"""The generated openclaw.json: its content, no secret in it, the secret files beside it, and
every variant the generator can produce accepted by the real `openclaw config validate` of the
pinned release."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from provisioner.openclaw.config import (
    GatewaySpec,
    render_config,
    secret_files,
    write_config,
    write_secret_files,
)
from provisioner.openclaw.install import OpenClawInstall
from provisioner.providers import PROVIDERS, get_provider

CANARY_CREDENTIAL = "cf-model-canary0credential0123456789"
CANARY_BOT = "555000111:CANARYcanaryCANARYcanaryCANARYcanary"
CANARY_GATEWAY = "gateway-canary-token-0123456789"
FAKE_BOT_API = "http://127.0.0.1:9999"
FAKE_MODEL = "http://127.0.0.1:8888/v1"
OWNER = 4242
# `config validate` costs ~1.5 s of CPU (module loading) and some waiting: a pool a little wider
# than the cores keeps them busy (measured: 4 at once on 2 cores is ~30% faster than 2).
CLI_SLOTS = min(8, 2 * (os.cpu_count() or 1))


def _spec(tmp: Path, **fields: Any) -> GatewaySpec:
    values: dict[str, Any] = dict(port=20001, provider="openai", model="gpt-5.5", state_dir=tmp / "state",
                                  log_file=tmp / "logs" / "openclaw.log", secrets_dir=tmp / "secrets")
    values.update(fields)
    return GatewaySpec(**values)


def _credential_ref() -> dict[str, str]:
    return {"source": "file", "provider": "clawfleet-model-credential", "id": "value"}


def _credential_provider(tmp: Path) -> dict[str, Any]:
    return {"clawfleet-model-credential": {"source": "file", "path": str(tmp / "secrets" / "model-credential"),
                                           "mode": "singleValue"}}


def _gateway_token_provider(tmp: Path) -> dict[str, Any]:
    return {"clawfleet-gateway-token": {"source": "file", "path": str(tmp / "secrets" / "gateway-token"),
                                        "mode": "singleValue"}}


# -- content ------------------------------------------------------------------------------------

def test_the_plainest_instance_in_full(tmp_path) -> None:
    assert render_config(_spec(tmp_path)) == {
        "gateway": {
            "mode": "local",
            "port": 20001,
            "bind": "loopback",
            "auth": {"mode": "token", "token": {"source": "file", "provider": "clawfleet-gateway-token",
                                                "id": "value"}},
            "controlUi": {"enabled": True},
        },
        "agents": {"defaults": {"model": {"primary": "openai/gpt-5.5"},
                                "workspace": str(tmp_path / "state" / "workspace")}},
        "models": {
            "catalogRefresh": {"enabled": False},
            "providers": {"openai": {
                "agentRuntime": {"id": "openclaw"},  # never the Codex harness
                "baseUrl": "https://api.openai.com/v1",
                "api": "openai-responses",
                "apiKey": _credential_ref(),  # the instance's model gateway credential, never a provider key
                "models": [{"id": m, "name": m} for m in get_provider("openai").models],
            }},
        },
        "logging": {"file": str(tmp_path / "logs" / "openclaw.log"), "maxFileBytes": 10 * 1024 * 1024},
        "plugins": {"allow": ["openai", "memory-core"]},
        "update": {"checkOnStart": False},
        "secrets": {"providers": {**_gateway_token_provider(tmp_path), **_credential_provider(tmp_path)}},
    }


def test_known_owner_is_allowlisted_and_the_bot_api_is_pointed_at(tmp_path) -> None:
    config = render_config(_spec(tmp_path, telegram=True, telegram_allow_from=OWNER, telegram_api_root=FAKE_BOT_API))
    assert config["channels"] == {"telegram": {
        "enabled": True,
        "tokenFile": str(tmp_path / "secrets" / "telegram-bot-token"),
        "groupPolicy": "disabled",
        "dmPolicy": "allowlist",
        "allowFrom": [OWNER],
        "apiRoot": FAKE_BOT_API,
    }}
    assert config["plugins"]["allow"] == ["openai", "telegram", "memory-core"]
    assert config["secrets"]["providers"] == {**_gateway_token_provider(tmp_path), **_credential_provider(tmp_path)}


def test_unknown_owner_means_pairing_and_telegrams_own_api(tmp_path) -> None:
    telegram = render_config(_spec(tmp_path, telegram=True))["channels"]["telegram"]
    assert telegram["dmPolicy"] == "pairing"
    assert "allowFrom" not in telegram and "apiRoot" not in telegram


def test_no_telegram_means_no_channel_even_if_an_owner_is_known(tmp_path) -> None:
    config = render_config(_spec(tmp_path, telegram_allow_from=OWNER, telegram_api_root=FAKE_BOT_API))
    assert "channels" not in config and "telegram" not in config["plugins"]["allow"]


def test_a_bundled_provider_pointed_elsewhere_lists_its_offered_models(tmp_path) -> None:
    config = render_config(_spec(tmp_path, provider="anthropic", model="claude-haiku-4-5",
                                 model_url=FAKE_MODEL))
    assert config["models"]["providers"] == {"anthropic": {
        "agentRuntime": {"id": "openclaw"},
        "baseUrl": FAKE_MODEL,
        "api": "anthropic-messages",
        "apiKey": _credential_ref(),
        "headers": {"anthropic-beta": "interleaved-thinking-2025-05-14"},  # dropped off the direct endpoint
        "models": [{"id": m, "name": m} for m in get_provider("anthropic").models],
    }}
    assert config["agents"]["defaults"]["model"] == {"primary": "anthropic/claude-haiku-4-5"}


@pytest.mark.parametrize(("provider", "openclaw_id", "endpoint", "api"), [
    ("anthropic", "anthropic", "https://api.anthropic.com", "anthropic-messages"),
    ("moonshot", "moonshot", "https://api.moonshot.ai/v1", "openai-completions"),
    ("kimi-coding", "kimi", "https://api.kimi.com/coding", "anthropic-messages"),
])
def test_every_provider_is_declared_with_the_model_gateway_credential_by_reference(
        tmp_path, provider: str, openclaw_id: str, endpoint: str, api: str) -> None:
    table = get_provider(provider)
    config = render_config(_spec(tmp_path, provider=provider, model=table.default_model))
    headers = {"headers": {"anthropic-beta": "interleaved-thinking-2025-05-14"}} if provider == "anthropic" else {}
    assert config["models"]["providers"] == {openclaw_id: {
        "agentRuntime": {"id": "openclaw"},
        "baseUrl": endpoint,
        "api": api,
        "apiKey": _credential_ref(),
        "models": [{"id": m, "name": m} for m in table.models],
        **headers,
    }}
    assert config["agents"]["defaults"]["model"]["primary"] == f"{openclaw_id}/{table.default_model}"
    # never empty: empty means "load all 40"
    assert config["plugins"]["allow"] == ([provider] if table.bundled else []) + ["memory-core"]
    assert config["secrets"]["providers"] == {**_gateway_token_provider(tmp_path), **_credential_provider(tmp_path)}
    pointed = render_config(_spec(tmp_path, provider=provider, model=table.default_model, model_url=FAKE_MODEL))
    assert pointed["models"]["providers"][openclaw_id]["baseUrl"] == FAKE_MODEL


def test_a_model_no_longer_offered_keeps_running(tmp_path) -> None:
    config = render_config(_spec(tmp_path, provider="moonshot", model="kimi-k2.5"))
    assert {"id": "kimi-k2.5", "name": "kimi-k2.5"} in config["models"]["providers"]["moonshot"]["models"]


def test_control_ui_off_and_container_bind(tmp_path) -> None:
    config = render_config(_spec(tmp_path, control_ui=False, bind="lan",
                                 control_ui_origins=("https://a1.fleet.example",)))
    assert config["gateway"]["controlUi"] == {"enabled": False}  # origins only matter when it is on
    assert config["gateway"]["bind"] == "lan" and config["gateway"]["auth"]["mode"] == "token"
    shown = render_config(_spec(tmp_path, control_ui_origins=("https://a1.fleet.example",)))
    assert shown["gateway"]["controlUi"] == {"enabled": True, "allowedOrigins": ["https://a1.fleet.example"]}


def test_bad_specs_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="bind"):
        render_config(_spec(tmp_path, bind="0.0.0.0"))
    with pytest.raises(ValueError, match="choose one of"):
        render_config(_spec(tmp_path, provider="skynet"))


# -- secrets ------------------------------------------------------------------------------------

def _refs(node: object, source: str) -> list[dict[str, str]]:
    """Every SecretRef of this source in a config, wherever it sits."""
    if isinstance(node, dict):
        if node.get("source") == source and "id" in node and "provider" in node:
            return [node]
        return [found for value in node.values() for found in _refs(value, source)]
    if isinstance(node, list):
        return [found for value in node for found in _refs(value, source)]
    return []


def _files(spec: GatewaySpec) -> dict[str, str]:
    return secret_files(spec, SecretStr(CANARY_GATEWAY), SecretStr(CANARY_BOT) if spec.telegram else None,
                        SecretStr(CANARY_CREDENTIAL))


def test_no_variant_holds_a_secret_and_every_ref_is_supplied(tmp_path) -> None:
    for spec in every_variant(tmp_path):
        config = render_config(spec)
        text = json.dumps(config)
        for canary in (CANARY_CREDENTIAL, CANARY_BOT, CANARY_GATEWAY, "canary", "CANARY"):
            assert canary not in text
        files, providers = _files(spec), config["secrets"]["providers"]
        assert _refs(config, "env") == []  # no secret is read from the environment
        # every file the config reads is one the runtime writes into the secrets dir, and no other
        read = [Path(providers[ref["provider"]]["path"]) for ref in _refs(config, "file")]
        if spec.telegram:
            read.append(Path(config["channels"]["telegram"]["tokenFile"]))
        assert sorted(read) == sorted(spec.secrets_dir / name for name in files)


def test_write_config_is_private_and_atomic(tmp_path) -> None:
    spec = _spec(tmp_path, telegram=True, telegram_allow_from=1)
    path = tmp_path / "home" / "openclaw.json"
    write_config(render_config(spec), path)
    write_config(render_config(replace(spec, port=20002)), path)  # replacing keeps the mode and leaves no temp file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["gateway"]["port"] == 20002
    assert [p.name for p in path.parent.iterdir()] == ["openclaw.json"]
    assert CANARY_BOT not in path.read_text()


def test_every_secret_is_a_file(tmp_path) -> None:
    spec = _spec(tmp_path, provider="kimi-coding", model="kimi-for-coding", telegram=True)
    assert _files(spec) == {"gateway-token": CANARY_GATEWAY, "telegram-bot-token": CANARY_BOT,
                            "model-credential": CANARY_CREDENTIAL}
    plain = _spec(tmp_path)  # no channel, no bot token
    assert secret_files(plain, SecretStr(CANARY_GATEWAY), SecretStr(CANARY_BOT), SecretStr(CANARY_CREDENTIAL)) \
        == {"gateway-token": CANARY_GATEWAY, "model-credential": CANARY_CREDENTIAL}
    with pytest.raises(ValueError, match="bot token"):
        secret_files(spec, SecretStr(CANARY_GATEWAY), None, SecretStr(CANARY_CREDENTIAL))


def test_secret_files_are_private_single_linked_and_exactly_todays(tmp_path, permissive_umask) -> None:
    directory = tmp_path / "instance" / "secrets"
    write_secret_files(directory, {"gateway-token": "old", "telegram-bot-token": "555:old"})
    write_secret_files(directory, {"gateway-token": "new"})  # the bot token was removed: so is its file
    assert sorted(os.listdir(directory)) == ["gateway-token"]
    path = directory / "gateway-token"
    assert path.read_text() == "new"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_nlink == 1 and not path.is_symlink()


# -- every variant against the real CLI ---------------------------------------------------------

def every_variant(tmp: Path) -> list[GatewaySpec]:
    """provider x telegram x owner x apiRoot x baseUrl x control UI; Telegram settings only with
    a channel (without one they render nothing). Models and bind rotate through the variants."""
    variants: list[GatewaySpec] = []
    for provider, telegram, owner, api_root, base_url, control_ui in itertools.product(
        PROVIDERS, (False, True), (None, OWNER), (None, FAKE_BOT_API), (None, FAKE_MODEL), (True, False),
    ):
        if not telegram and (owner is not None or api_root is not None):
            continue
        n = len(variants)
        variants.append(_spec(
            tmp / f"v{n:03d}", provider=provider.id, model=provider.models[n % len(provider.models)],
            telegram=telegram, telegram_allow_from=owner, telegram_api_root=api_root, model_url=base_url,
            control_ui=control_ui, bind=("loopback", "lan")[n % 2], port=20000 + n,
            control_ui_origins=("https://i1.fleet.example",) if n % 3 == 0 else (),
        ))
    return variants


async def _run_openclaw(install: OpenClawInstall, specs: list[GatewaySpec], *args: str,
                        with_secrets: bool = True) -> list[tuple[GatewaySpec, int, str]]:
    """Write each spec's config into its own home and run `openclaw ARGS` there, CLI_SLOTS at a time."""
    slots = asyncio.Semaphore(CLI_SLOTS)

    async def run(spec: GatewaySpec) -> tuple[GatewaySpec, int, str]:
        home = spec.state_dir.parent
        write_config(render_config(spec), home / "openclaw.json")
        write_secret_files(spec.secrets_dir, _files(spec) if with_secrets else {})
        env = {**install.env(), "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8",
               "OPENCLAW_STATE_DIR": str(spec.state_dir), "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json")}
        async with slots:
            process = await asyncio.create_subprocess_exec(
                *install.argv(*args), env=env, cwd=home, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), timeout=180)
        return spec, process.returncode, (out + err).decode(errors="replace")

    return await asyncio.gather(*(run(spec) for spec in specs))


def _json_in(output: str) -> Any:
    """The JSON document a CLI printed, ignoring notices before and after it."""
    return json.JSONDecoder().raw_decode(output[output.index("{"):])[0]


def _failures(results: list[tuple[GatewaySpec, int, str]], ok) -> list[str]:
    return [f"{spec}: exit {code}: {output[-1500:]}" for spec, code, output in results if not ok(code, output)]


async def test_every_variant_passes_openclaw_config_validate(tmp_path, openclaw_install) -> None:
    variants = every_variant(tmp_path)
    assert len(variants) == 4 * (4 + 16)  # per provider: 4 without Telegram, 16 with
    began = time.monotonic()
    results = await _run_openclaw(openclaw_install, variants, "config", "validate", "--json")
    elapsed = time.monotonic() - began

    def valid(code: int, output: str) -> bool:
        report = _json_in(output) if "{" in output else {}
        return code == 0 and report.get("valid") is True and report.get("warnings") == []

    assert _failures(results, valid) == []
    print(f"openclaw config validate: {len(variants)} variants in {elapsed:.0f} s ({CLI_SLOTS} at a time)")


async def test_config_validate_does_reject_a_broken_file(tmp_path, openclaw_install) -> None:
    spec = _spec(tmp_path)
    config = render_config(spec)
    config["gateway"]["bogus"] = True  # proves the check above is not vacuous
    (tmp_path / "openclaw.json").write_text(json.dumps(config))
    process = await asyncio.create_subprocess_exec(
        *openclaw_install.argv("config", "validate"),
        env={**openclaw_install.env(), "HOME": str(tmp_path), "OPENCLAW_STATE_DIR": str(tmp_path / "state"),
             "OPENCLAW_CONFIG_PATH": str(tmp_path / "openclaw.json")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode != 0 and b"bogus" in output


async def test_every_secret_resolves_from_its_variable_or_file_and_none_is_plaintext(
        tmp_path, openclaw_install) -> None:
    # `secrets audit --check` resolves every SecretRef and looks for plaintext secrets: clean with
    # exactly secret_files' files, unresolved without them.
    # With Telegram on, each provider's config holds every kind of ref it can have.
    specs = [_spec(tmp_path / provider.id, provider=provider.id, model=provider.default_model,
                   telegram=True, telegram_allow_from=OWNER, telegram_api_root=FAKE_BOT_API)
             for provider in PROVIDERS]
    results = await _run_openclaw(openclaw_install, specs, "secrets", "audit", "--check")
    assert _failures(results, lambda code, output: code == 0 and "plaintext=0, unresolved=0" in output) == []
    missing = await _run_openclaw(openclaw_install, [specs[-1]], "secrets", "audit", "--check", with_secrets=False)
    # (the audit covers SecretRefs, not channels.telegram.tokenFile: the gateway tests read that one)
    assert _failures(missing, lambda code, output: code != 0 and "clawfleet-gateway-token" in output) == []


async def test_lean_profile_loads_only_the_needed_plugins(tmp_path, openclaw_install) -> None:
    specs = [_spec(tmp_path / provider.id, provider=provider.id, model=provider.default_model)
             for provider in PROVIDERS]
    specs.append(_spec(tmp_path / "telegram", telegram=True, telegram_allow_from=OWNER, telegram_api_root=FAKE_BOT_API))
    results = await _run_openclaw(openclaw_install, specs, "plugins", "list", "--enabled", "--json")
    enabled = {}
    for spec, code, output in results:
        assert code == 0, output[-1500:]
        listing = _json_in(output)
        enabled[spec.state_dir.parent.name] = sorted(plugin["id"] for plugin in listing["plugins"])
    assert enabled == {
        "anthropic": ["anthropic", "memory-core"],
        "openai": ["memory-core", "openai"],
        "moonshot": ["memory-core"],
        "kimi-coding": ["memory-core"],
        "telegram": ["memory-core", "openai", "telegram"],
    }
