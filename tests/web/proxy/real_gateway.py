"""One real OpenClaw gateway for the proxy's tests and benchmark, started by the process runtime
with its model provider on the loopback fake model server (no channel, no traffic off the machine)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from provisioner.openclaw.install import OpenClawInstall
from provisioner.runtimes.base import LaunchRequest
from provisioner.runtimes.process import ProcessRuntime
from tests.fakes.model import FakeModel
from tests.support.platform_process import free_port
from tests.support.waiting import eventually, gateway_ready

PROXY_SOURCES = ["127.0.0.1/32"]  # the proxy in these tests and the benchmark runs on loopback
GATEWAY_TOKEN = "gateway-token-proxy-0123456789abcdef"  # token auth: what a client of its socket sends


class BehindProxyRuntime(ProcessRuntime):
    """The process runtime with the gateway told that the loopback proxy's X-Forwarded-* are believable:
    from an untrusted source the gateway refuses forwarded requests (403)."""

    def write_config(self, config: dict[str, Any], path: Path) -> None:
        gateway = config["gateway"]
        gateway["trustedProxies"] = PROXY_SOURCES
        super().write_config(config, path)


READY_TIMEOUT_S = 150  # about 10 s alone; far more while other gateways start beside it


@asynccontextmanager
async def running_gateway(data_dir: Path, install: OpenClawInstall) -> AsyncIterator[str]:
    """The gateway's base URL, once it is ready."""
    runtime = BehindProxyRuntime(data_dir, install)
    instance_id = uuid.uuid4()
    async with FakeModel() as model:
        request = LaunchRequest(instance_id, free_port(), "openai", "gpt-5.5", SecretStr("sk-proj-proxy0proxy0proxy0proxy0"),
                                SecretStr(GATEWAY_TOKEN), model_url=f"{model.url}/v1")
        started = await runtime.start(request, {})
        try:
            log = runtime.gateway_log(instance_id)
            await eventually(lambda: gateway_ready(started.endpoint_url), timeout=READY_TIMEOUT_S,
                             what=lambda: log.read_text()[-3000:] if log.exists() else "no log")
            yield started.endpoint_url
        finally:
            await runtime.remove(instance_id, started.state, keep_data=False)
            await runtime.close()
