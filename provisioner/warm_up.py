"""One agent turn run inside a gateway that just started, before its owner is told it runs.

OpenClaw does much of an agent's set-up lazily, on the first turn: it loads the agent runtime's
modules, starts worker threads for its SQLite stores and catalogs the tools. Measured on
2026.9.6 (process runtime, fake model answering at once): the first answer took 9 s, the
second 1.4 s. A warm-up turn moves that work before the instance is reported running.

How, and why this way (each choice measured on 2026.9.6):
  - Through the gateway's own RPC (`openclaw gateway call`, run by the runtime's exec inside the
    instance, where it signs in with the gateway's password on loopback): `sessions.create`
    with an initial message starts the turn in the gateway itself. `openclaw agent --local`
    would run the agent in the CLI's process and warm nothing; plain `openclaw agent` does warm
    the gateway, but every such run leaves a task record (with the message) in the gateway's
    task list for a week, and its CLI takes 3-4 s more.
  - Done is when the model gateway has answered the turn's model call (its last step), learnt
    without another CLI start (`agent.wait` would cost one, about 2 s of CPU). The session is
    given a name, so OpenClaw makes no title for it: one model call, not two. The nonce still
    answers for a while after, so a late call of the turn never reaches the provider.
  - It starts as soon as the gateway answers /healthz, before /readyz: the CLI's own start
    (about 2 s) overlaps the gateway's channel start. A call made too early is made again
    once the gateway is ready.
  - The session is incognito (`incognito: true`, as the Control UI's incognito threads): its
    entry and transcript live in the gateway's memory only, so nothing is written to the
    session store, nothing is archived, the memory flush skips it, no "new session" notice
    reaches the owner's next turn (`notifyOnCreate` leaves incognito sessions out), and it is
    gone at the next restart. The workspace's first-run BOOTSTRAP.md stays pending: OpenClaw
    retires it only when the agent edits its identity files or starts memory/, and the
    warm-up's one-word reply does neither.
  - The message carries a one-time nonce registered with the model gateway first, which
    answers that turn's model calls itself: the provider sees nothing, the owner pays nothing.
  - What it cannot warm: the first write to the durable session store (OpenClaw then opens its
    agent database, has it verified by a child process and plans its maintenance in a worker,
    about 2 s here), which only a real, stored session triggers.

A warm-up that fails or times out never fails the start: the owner's first answer is only slower.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from provisioner.gateway_calls import GatewayCallFailed, error_of, gateway_call
from provisioner.runtimes.base import Runtime

AGENT_ID = "main"  # the generated config's only agent (OpenClaw's default)
WARM_UP_TIMEOUT_S = 90.0
NONCE_GRACE_S = 30.0  # after the warm-up, its nonce still answers a late call of its turn


class Nonces(Protocol):
    """The model gateway's register of warm-up nonces (model_gateway.warm_up.WarmUpNonces)."""

    def register(self, instance_id: uuid.UUID) -> str: ...

    def retire(self, instance_id: uuid.UUID, nonce: str, grace_s: float) -> None: ...

    async def wait_answered(self, instance_id: uuid.UUID, nonce: str) -> None: ...


@dataclass(frozen=True)
class WarmUpResult:
    ok: bool
    seconds: float
    detail: str  # why it failed, for the log (never the CLI's whole output: it may quote the config)


def create_params(nonce: str) -> dict[str, Any]:
    # A name of its own: OpenClaw then generates no title for it, so the turn is one model call.
    return {"agentId": AGENT_ID, "incognito": True, "displayName": "Warm-up",
            "message": f"Warm-up check {nonce}: reply with one word."}


async def warm_up(runtime: Runtime, nonces: Nonces, instance_id: uuid.UUID, state: dict[str, Any],
                  timeout_s: float = WARM_UP_TIMEOUT_S, ready: asyncio.Event | None = None) -> WarmUpResult:
    """`ready`: set once the gateway answers /readyz (None: it does already)."""
    began = time.monotonic()
    nonce = nonces.register(instance_id)
    try:
        async with asyncio.timeout(timeout_s):
            try:
                created = await gateway_call(runtime, instance_id, state, "sessions.create", create_params(nonce))
            except GatewayCallFailed:
                if ready is None or ready.is_set():
                    raise
                await ready.wait()  # it was not taking calls yet
                created = await gateway_call(runtime, instance_id, state, "sessions.create", create_params(nonce))
            if not created.get("runStarted"):
                return WarmUpResult(False, time.monotonic() - began,
                                    f"no turn started: {error_of(created) or 'runStarted is false'}")
            await nonces.wait_answered(instance_id, nonce)
    except GatewayCallFailed as failed:
        return WarmUpResult(False, time.monotonic() - began, str(failed))
    except TimeoutError:
        return WarmUpResult(False, time.monotonic() - began, f"not done within {timeout_s:.0f} s")
    except Exception as exc:  # a runtime that cannot exec: the start goes on without it
        return WarmUpResult(False, time.monotonic() - began, f"{type(exc).__name__}: {exc}")
    finally:
        nonces.retire(instance_id, nonce, NONCE_GRACE_S)
    return WarmUpResult(True, time.monotonic() - began, "")


class _CallFailed(Exception):
    pass
