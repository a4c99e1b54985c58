"""The gateway's own RPC from inside its instance: `openclaw gateway call METHOD --json`, run by
the runtime's exec, where the CLI signs in with the gateway's password on loopback. For what the
platform asks a live gateway (a warm-up turn, whether it is idle) without a client of its own."""

from __future__ import annotations

import json
import uuid
from typing import Any

from provisioner.runtimes.base import Runtime


class GatewayCallFailed(Exception):
    """The call did not answer with JSON, or its CLI failed; the message says why, shortly."""


def call_argv(method: str, params: dict[str, Any]) -> list[str]:
    return ["gateway", "call", method, "--json", "--params", json.dumps(params)]


async def gateway_call(runtime: Runtime, instance_id: uuid.UUID, state: dict[str, Any], method: str,
                       params: dict[str, Any]) -> dict[str, Any]:
    """The call's JSON answer (it follows any log lines the CLI prints first)."""
    result = await runtime.exec(instance_id, state, call_argv(method, params))
    answer = _json_of(result.output)
    if result.exit_code != 0 or answer is None:
        why = error_of(answer) if answer is not None else _last_line(result.output)
        raise GatewayCallFailed(f"`openclaw gateway call {method}` exited with {result.exit_code}: {why}")
    return answer


def error_of(answer: dict[str, Any]) -> str:
    error = answer.get("error") or answer.get("runError")  # not a status
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")[:200]
    return str(error or "")[:200]


def _json_of(output: str) -> dict[str, Any] | None:
    start = output.find("{")
    if start < 0:
        return None
    try:
        answer = json.loads(output[start:])
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


async def gateway_busy(runtime: Runtime, instance_id: uuid.UUID, state: dict[str, Any]) -> str | None:
    """None when none of the gateway's work is in flight (a reply, a tool, a terminal): it then
    also admits no new work, until it is stopped (`gateway.suspend.prepare`; its lease lapses by
    itself after two minutes should the stop never come). Otherwise why not, in words."""
    params = {"requestId": f"clawfleet-{uuid.uuid4().hex}", "terminalPolicy": "preserve"}
    try:
        answer = await gateway_call(runtime, instance_id, state, "gateway.suspend.prepare", params)
    except GatewayCallFailed as failed:
        return f"the gateway could not say whether it is busy ({failed})"
    if answer.get("status") == "ready":
        return None
    return f"the gateway is busy ({answer.get('status') or error_of(answer) or 'no answer'})"
