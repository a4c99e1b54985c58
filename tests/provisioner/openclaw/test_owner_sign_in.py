"""Owner sign-in: with `GatewaySpec.owner` the gateway trusts the platform's proxy to name the
browser's user (OpenClaw's trusted-proxy mode), so the owner's Control UI connects with no token
and no pairing prompt, with every scope but admin. A real gateway started with the rendered config
accepts the Control UI's WebSocket handshake as the proxy sends it, and refuses it with a loopback
client address, another user or another origin; the platform's own callers still get in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from provisioner.openclaw.config import (
    FORWARDED_FOR,
    GATEWAY_PASSWORD_FILE,
    GATEWAY_TOKEN_FILE,
    LOCAL_CLIENT,
    MODEL_CREDENTIAL_FILE,
    OWNER_HEADER,
    OWNER_SCOPES,
    PROBE_HEADERS,
    SCOPES_HEADER,
    GatewaySpec,
    owner_request_headers,
    render_config,
    secret_files,
    write_config,
    write_secret_files,
)
from provisioner.openclaw.install import OpenClawInstall
from tests.support.control_ui import call, control_ui
from tests.support.platform_process import free_port
from tests.support.waiting import eventually

OWNER = "c0ffee00-0000-4000-8000-000000000001"
ORIGIN = "http://owner1.localhost:8080"
GATEWAY_SECRET = "gateway-secret-owner-sign-in-0123456789"
CREDENTIAL = SecretStr("cf-model-owner-sign-in-credential")


def _spec(tmp: Path, **fields: Any) -> GatewaySpec:
    values: dict[str, Any] = dict(port=20001, provider="openai", model="gpt-5.5", state_dir=tmp / "state",
                                  log_file=tmp / "logs" / "openclaw.log", secrets_dir=tmp / "secrets",
                                  model_url="http://127.0.0.1:9/v1", control_ui_origins=(ORIGIN,),
                                  owner=OWNER, proxy_address="127.0.0.1")
    values.update(fields)
    return GatewaySpec(**values)


# -- content ------------------------------------------------------------------------------------

def test_a_loopback_proxy_is_trusted_for_the_owner_alone(tmp_path) -> None:
    gateway = render_config(_spec(tmp_path))["gateway"]
    assert gateway["trustedProxies"] == ["127.0.0.1/32"]
    assert gateway["auth"] == {
        "mode": "trusted-proxy",
        "trustedProxy": {"userHeader": OWNER_HEADER, "allowUsers": [OWNER], "allowLoopback": True,
                         "deviceAutoApprove": {"enabled": True, "scopes": list(OWNER_SCOPES)}},
        "password": {"source": "file", "provider": f"clawfleet-{GATEWAY_PASSWORD_FILE}", "id": "value"},
    }
    assert "token" not in gateway["auth"]  # OpenClaw refuses to start with both
    assert gateway["controlUi"]["allowedOrigins"] == [ORIGIN]
    assert "operator.admin" not in OWNER_SCOPES


def test_a_bridge_proxy_gets_no_loopback_trust(tmp_path) -> None:
    gateway = render_config(_spec(tmp_path, bind="lan", proxy_address="172.18.0.1"))["gateway"]
    assert gateway["trustedProxies"] == ["172.18.0.1/32"]
    assert "allowLoopback" not in gateway["auth"]["trustedProxy"]
    v6 = render_config(_spec(tmp_path, proxy_address="fd00::1"))["gateway"]
    assert v6["trustedProxies"] == ["fd00::1/128"]


def test_without_an_owner_the_gateway_keeps_its_token(tmp_path) -> None:
    spec = _spec(tmp_path, owner=None, proxy_address=None)
    assert render_config(spec)["gateway"]["auth"]["mode"] == "token"
    assert "trustedProxies" not in render_config(spec)["gateway"]
    assert set(secret_files(spec, SecretStr(GATEWAY_SECRET), None, CREDENTIAL)) == {GATEWAY_TOKEN_FILE, MODEL_CREDENTIAL_FILE}


def test_the_gateway_secret_becomes_the_internal_callers_password(tmp_path) -> None:
    spec = _spec(tmp_path)
    assert secret_files(spec, SecretStr(GATEWAY_SECRET), None, CREDENTIAL) == {
        GATEWAY_PASSWORD_FILE: GATEWAY_SECRET, MODEL_CREDENTIAL_FILE: CREDENTIAL.get_secret_value()}
    providers = render_config(spec)["secrets"]["providers"]
    assert providers[f"clawfleet-{GATEWAY_PASSWORD_FILE}"]["path"] == str(tmp_path / "secrets" / GATEWAY_PASSWORD_FILE)
    assert f"clawfleet-{GATEWAY_TOKEN_FILE}" not in providers
    assert GATEWAY_SECRET not in json.dumps(render_config(spec))


@pytest.mark.parametrize("fields", [
    {"proxy_address": None},
    {"proxy_address": "localhost"},
    {"proxy_address": "10.0.0.0/8"},
    {"owner": ""},
    {"owner": " padded "},
    {"control_ui_origins": ()},
])
def test_specs_owner_sign_in_cannot_work_with_are_refused(tmp_path, fields) -> None:
    with pytest.raises(ValueError):
        render_config(_spec(tmp_path, **fields))


def test_without_the_control_ui_no_origin_is_needed(tmp_path) -> None:
    assert render_config(_spec(tmp_path, control_ui=False, control_ui_origins=()))["gateway"]["auth"]["mode"] == (
        "trusted-proxy")


@pytest.mark.parametrize(("client", "named"), [
    ("127.0.0.1", LOCAL_CLIENT), ("::1", LOCAL_CLIENT), ("::ffff:127.0.0.1", LOCAL_CLIENT), (None, LOCAL_CLIENT),
    ("not an address", LOCAL_CLIENT), ("203.0.113.5", "203.0.113.5"), ("2001:db8::7", "2001:db8::7"),
])
def test_the_proxy_names_a_loopback_browser_with_the_placeholder(client, named) -> None:
    assert owner_request_headers(OWNER, client) == {
        OWNER_HEADER: OWNER, FORWARDED_FOR: named, SCOPES_HEADER: ",".join(OWNER_SCOPES)}


# -- a real gateway -----------------------------------------------------------------------------

def _env(install: OpenClawInstall, home: Path) -> dict[str, str]:
    """The process runtime's environment for a gateway (and the CLI) living in `home`."""
    return {**install.env(), "HOME": str(home / "home"), "XDG_CACHE_HOME": str(home / "cache"),
            "TMPDIR": str(home / "tmp"), "LANG": "C.UTF-8", "OPENCLAW_STATE_DIR": str(home / "state"),
            "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json"), "OPENAI_API_KEY": "sk-proj-ownerSIGNIN0123456789",
            "NODE_OPTIONS": "--max-old-space-size=384 --max-semi-space-size=8"}


@contextlib.asynccontextmanager
async def _gateway(install: OpenClawInstall, home: Path, spec: GatewaySpec) -> AsyncIterator[str]:
    for sub in ("state", "home", "cache", "tmp", "logs"):
        (home / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    write_config(render_config(spec), home / "openclaw.json")
    write_secret_files(spec.secrets_dir, secret_files(spec, SecretStr(GATEWAY_SECRET), None, CREDENTIAL))
    log = home / "logs" / "gateway.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *install.argv("gateway", "run"), cwd=home, env=_env(install, home), stdin=asyncio.subprocess.DEVNULL,
            stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{spec.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/readyz", headers=PROBE_HEADERS) as response:
                        return response.status == 200
                return False

            await eventually(ready, timeout=150, what=lambda: log.read_text()[-3000:])
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def test_the_owners_control_ui_connects_through_the_proxy_and_nobody_else(tmp_path, openclaw_install) -> None:
    home = tmp_path / "instance"
    spec = _spec(home, port=free_port())
    async with _gateway(openclaw_install, home, spec) as url, aiohttp.ClientSession() as http:
        headers = owner_request_headers(OWNER, "127.0.0.1")  # the laptop's browser, through the loopback proxy
        async with control_ui(http, url, headers, ORIGIN) as (ws, answer):
            assert answer["ok"], answer
            auth = answer["payload"]["auth"]
            assert auth["method"] == "trusted-proxy" and auth["role"] == "operator"
            assert sorted(auth["scopes"]) == sorted(OWNER_SCOPES)  # approved at once, without admin
            assert (await call(ws, "health", {}))["ok"]
            refused = await call(ws, "config.set", {"raw": "{}"})
            assert refused["error"]["details"]["missingScope"] == "operator.admin"

        # A client the proxy failed to name (loopback) is refused before any route, the page included.
        with pytest.raises(aiohttp.WSServerHandshakeError) as loopback:
            async with control_ui(http, url, {**headers, FORWARDED_FOR: "127.0.0.1"}, ORIGIN):
                pass
        assert loopback.value.status == 403
        async with http.get(url, headers={**headers, FORWARDED_FOR: "127.0.0.1"}) as page:
            assert page.status == 403 and "proxy_attribution_required" in await page.text()

        async with control_ui(http, url, {**headers, OWNER_HEADER: "someone-else"}, ORIGIN) as (_, answer):
            assert answer["error"]["details"]["authReason"] == "trusted_proxy_user_not_allowed"
        async with control_ui(http, url, headers, "http://other.localhost:8080") as (_, answer):
            assert answer["error"]["details"]["code"] == "CONTROL_UI_ORIGIN_NOT_ALLOWED"

        # A real browser elsewhere (a server's case) is named by its own address.
        async with control_ui(http, url, owner_request_headers(OWNER, "203.0.113.5"), ORIGIN) as (_, answer):
            assert answer["ok"] and answer["payload"]["auth"]["method"] == "trusted-proxy", answer

        # The platform's own callers: a loopback probe without forwarded headers, and the CLI (password).
        async with http.get(f"{url}/readyz") as probe:
            assert probe.status == 200
        cli = await asyncio.create_subprocess_exec(
            *openclaw_install.argv("gateway", "call", "health", "--json"), cwd=home, env=_env(openclaw_install, home),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(cli.communicate(), timeout=120)
        assert cli.returncode == 0 and '"ok": true' in output.decode(), output.decode()[-2000:]


async def test_the_bridge_variant_passes_openclaw_config_validate(tmp_path, openclaw_install) -> None:
    home = tmp_path / "container"
    spec = _spec(home, bind="lan", proxy_address="172.18.0.1")
    home.mkdir()
    write_config(render_config(spec), home / "openclaw.json")
    write_secret_files(spec.secrets_dir, secret_files(spec, SecretStr(GATEWAY_SECRET), None, CREDENTIAL))
    process = await asyncio.create_subprocess_exec(
        *openclaw_install.argv("config", "validate", "--json"), cwd=home, env=_env(openclaw_install, home),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    text = output.decode()
    report = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
    assert process.returncode == 0 and report["valid"] and not report.get("warnings"), text[-2000:]
