"""One gateway, as each runtime launches it: its whole config, environment, secret files and port
from a LaunchRequest and the runtime's placement, by dict equality."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from provisioner.model_access import route_url
from provisioner.openclaw.gateway import Gateway, build_gateway, placement_env
from provisioner.providers import get_provider
from provisioner.runtimes import docker_spec, process
from provisioner.runtimes.base import LaunchRequest

INSTANCE = uuid.UUID("5b0d6f2e-8a51-4a07-9a52-2f3c1c7e9d10")
FAKE_MODEL = "http://127.0.0.1:8888/v1"
FAKE_BOT_API = "http://127.0.0.1:9999"
TOKEN_REF = {"source": "file", "provider": "clawfleet-gateway-token", "id": "value"}
CREDENTIAL_REF = {"source": "file", "provider": "clawfleet-model-credential", "id": "value"}
OPENAI_MODELS = [{"id": model, "name": model} for model in get_provider("openai").models]


def _request(**fields) -> LaunchRequest:
    fields.setdefault("model_url", FAKE_MODEL)
    return LaunchRequest(INSTANCE, 20007, "openai", "gpt-5.5", SecretStr("cf-model-x"), SecretStr("gw-token"),
                         **fields)


def test_the_process_runtimes_gateway_listens_on_loopback_in_its_instance_dir() -> None:
    home = Path("/data/instances") / str(INSTANCE)
    assert build_gateway(_request(memory_mb=2048), process.placement(home)) == Gateway(
        config={
            "gateway": {"mode": "local", "port": 20007, "bind": "loopback",
                        "auth": {"mode": "token", "token": TOKEN_REF}, "controlUi": {"enabled": True}},
            "agents": {"defaults": {"model": {"primary": "openai/gpt-5.5"}, "workspace": f"{home}/state/workspace"}},
            "models": {"catalogRefresh": {"enabled": False}, "providers": {"openai": {
                "agentRuntime": {"id": "openclaw"}, "baseUrl": FAKE_MODEL, "api": "openai-responses",
                "apiKey": CREDENTIAL_REF, "models": OPENAI_MODELS}}},
            "logging": {"file": f"{home}/logs/openclaw.log", "maxFileBytes": 10 * 1024 * 1024},
            "plugins": {"allow": ["openai", "memory-core"]},
            "update": {"checkOnStart": False},
            "secrets": {"providers": {
                "clawfleet-gateway-token": {
                    "source": "file", "path": f"{home}/secrets/gateway-token", "mode": "singleValue"},
                "clawfleet-model-credential": {
                    "source": "file", "path": f"{home}/secrets/model-credential", "mode": "singleValue"}}},
        },
        env={
            "OPENCLAW_STATE_DIR": f"{home}/state",
            "OPENCLAW_CONFIG_PATH": f"{home}/openclaw.json",  # beside the state dir, not in it
            "NODE_OPTIONS": "--max-old-space-size=384 --max-semi-space-size=8",  # lean, whatever the memory
        },  # no secret: no provider key at all, the tokens and the credential are files
        secret_files={"gateway-token": "gw-token", "model-credential": "cf-model-x"},
        port=20007,
    )


def test_the_docker_runtimes_gateway_listens_on_the_containers_own_port() -> None:
    request = _request(bot_token=SecretStr("555:bot"), telegram_allow_from=4242, telegram_api_root=FAKE_BOT_API)
    assert build_gateway(request, docker_spec.placement(1536)) == Gateway(
        config={
            "gateway": {"mode": "local", "port": 18789, "bind": "lan", "auth": {"mode": "token", "token": TOKEN_REF},
                        "controlUi": {"enabled": True}},
            "agents": {"defaults": {"model": {"primary": "openai/gpt-5.5"},
                                    "workspace": "/home/node/.openclaw/workspace"}},
            "models": {"catalogRefresh": {"enabled": False}, "providers": {"openai": {
                "agentRuntime": {"id": "openclaw"}, "baseUrl": FAKE_MODEL, "api": "openai-responses",
                "apiKey": CREDENTIAL_REF, "models": OPENAI_MODELS}}},
            "logging": {"file": "/home/node/.openclaw/logs/openclaw.log", "maxFileBytes": 10 * 1024 * 1024},
            "plugins": {"allow": ["openai", "telegram", "memory-core"]},
            "update": {"checkOnStart": False},
            "channels": {"telegram": {
                "enabled": True, "tokenFile": "/run/secrets/telegram-bot-token",
                "groupPolicy": "disabled", "dmPolicy": "allowlist", "allowFrom": [4242], "apiRoot": FAKE_BOT_API}},
            "secrets": {"providers": {
                "clawfleet-gateway-token": {
                    "source": "file", "path": "/run/secrets/gateway-token", "mode": "singleValue"},
                "clawfleet-model-credential": {
                    "source": "file", "path": "/run/secrets/model-credential", "mode": "singleValue"}}},
        },
        env={
            "OPENCLAW_STATE_DIR": "/home/node/.openclaw",
            "OPENCLAW_CONFIG_PATH": "/home/node/.openclaw/openclaw.json",
            "NODE_OPTIONS": "--max-old-space-size=1152 --max-semi-space-size=8",  # 3/4 of the container's memory
        },
        secret_files={"gateway-token": "gw-token", "telegram-bot-token": "555:bot", "model-credential": "cf-model-x"},
        port=18789,  # inside; the request's port is the host's side of the publication
    )


def test_the_cli_gets_the_gateways_own_variables() -> None:
    place = process.placement(Path("/data/instances/x"))
    assert placement_env(place) == build_gateway(_request(), place).env


def test_the_model_route_gets_the_platforms_address_as_each_runtime_sees_it() -> None:
    route = route_url(8090, INSTANCE)

    def base_url(place) -> str:
        return build_gateway(_request(model_url=route), place).config["models"]["providers"]["openai"]["baseUrl"]

    assert base_url(process.placement(Path("/data/instances/x"))) == f"http://127.0.0.1:8090/i/{INSTANCE}"
    assert base_url(docker_spec.placement(1536, "10.213.0.1")) == f"http://10.213.0.1:8090/i/{INSTANCE}"
    assert base_url(docker_spec.placement(1536, "fd00::1")) == f"http://[fd00::1]:8090/i/{INSTANCE}"
    with pytest.raises(ValueError, match="platform's address"):
        base_url(docker_spec.placement(1536, None))  # a network that names no address: no start
