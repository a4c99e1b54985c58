"""Warm-up turns answered by the model gateway itself, never by the provider.

Before an instance is reported running, the platform runs one agent turn inside its gateway so
that OpenClaw's lazy first-turn work (modules loaded, workers started) is done before the owner
writes (provisioner/warm_up.py). That turn must not reach the provider or spend the owner's
tokens. The platform registers a one-time nonce for the instance here first and puts it in the
warm-up message; any model call of that instance whose body holds a live nonce is answered here
with a short, valid reply in the provider's own API style (streamed when asked), and is neither
metered, nor held against a spending cap. A fixed marker would not do: the agent can read
anything in its instance, so it could send a marker it found; a nonce lives for one warm-up.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from model_gateway.forward import error_response

REPLY = "Ready."
NONCE_TTL_S = 300.0  # a warm-up that ends without retiring its nonce (a crash) lets it lapse
GENERATION_TAILS = ("messages", "chat/completions", "responses")  # what a warm-up turn may call

JsonDict = dict[str, Any]


@dataclass
class _Nonce:
    expires: float
    answered: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class WarmUpNonces:
    """Live nonces per instance, and whether a call carrying each was answered (how the platform
    learns that the warm-up turn has reached its model, without another CLI round trip).
    `clock` is injectable for tests."""

    ttl_s: float = NONCE_TTL_S
    clock: Callable[[], float] = time.monotonic
    _live: dict[uuid.UUID, dict[str, _Nonce]] = field(default_factory=dict)

    def register(self, instance_id: uuid.UUID) -> str:
        self._sweep()
        nonce = f"cfw-{secrets.token_hex(16)}"
        self._live.setdefault(instance_id, {})[nonce] = _Nonce(self.clock() + self.ttl_s)
        return nonce

    def retire(self, instance_id: uuid.UUID, nonce: str, grace_s: float) -> None:
        """Lapse in `grace_s`: a call of the warm-up turn still on its way is answered here too,
        never by the provider."""
        live = self._live.get(instance_id, {}).get(nonce)
        if live is not None:
            live.expires = min(live.expires, self.clock() + grace_s)

    def _sweep(self) -> None:
        for instance_id in list(self._live):
            self._drop_lapsed(instance_id)

    def _drop_lapsed(self, instance_id: uuid.UUID) -> None:
        now = self.clock()
        for nonce, live in list(self._live.get(instance_id, {}).items()):
            if live.expires <= now:
                self.revoke(instance_id, nonce)

    def revoke(self, instance_id: uuid.UUID, nonce: str) -> None:
        nonces = self._live.get(instance_id, {})
        nonces.pop(nonce, None)
        if not nonces:
            self._live.pop(instance_id, None)

    def carried_by(self, instance_id: uuid.UUID, body: bytes) -> str | None:
        """The live nonce of this instance that its request body holds, if any (another
        instance's nonce is nobody's business here: forwarded like any text)."""
        self._drop_lapsed(instance_id)
        return next((nonce for nonce in self._live.get(instance_id, {}) if nonce.encode() in body), None)

    def answered(self, instance_id: uuid.UUID, nonce: str) -> None:
        live = self._live.get(instance_id, {}).get(nonce)
        if live is not None:
            live.answered.set()

    async def wait_answered(self, instance_id: uuid.UUID, nonce: str) -> None:
        """Until a call carrying this live nonce has been answered (the caller bounds the wait)."""
        live = self._live.get(instance_id, {}).get(nonce)
        if live is None:
            raise KeyError("no such live nonce")
        await live.answered.wait()


async def answer_warm_up(request: web.Request, style: str, tail: str, body: bytes) -> web.StreamResponse:
    """The reply to a warm-up call, in the API style of the instance's provider."""
    try:
        asked = json.loads(body) if body else {}
    except ValueError:
        asked = {}
    asked = asked if isinstance(asked, dict) else {}
    model = str(asked.get("model") or "warm-up")
    path = tail.rstrip("/")
    if not path.endswith(GENERATION_TAILS):
        # Nothing but a model turn is expected from a warm-up (no embeddings: the turn is incognito).
        return error_response(style, 400, "invalid_request_error", "not a model turn")
    if style == "anthropic-messages":
        events, whole = _anthropic(model)
    elif path.endswith("responses"):
        events, whole = _responses(model)
    else:
        events, whole = _chat(model, include_usage=bool((asked.get("stream_options") or {}).get("include_usage")))
    if not asked.get("stream"):
        return web.json_response(whole)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(b"".join(events))
    await response.write_eof()
    return response


def _sse(data: JsonDict | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


def _anthropic(model: str) -> tuple[list[bytes], JsonDict]:
    usage = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
    message = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    whole = {**message, "content": [{"type": "text", "text": REPLY}], "stop_reason": "end_turn"}
    events = [
        _sse({"type": "message_start", "message": message}, "message_start"),
        _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
             "content_block_start"),
        _sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": REPLY}},
             "content_block_delta"),
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
              "usage": {"output_tokens": 0}}, "message_delta"),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return events, whole


def _chat(model: str, include_usage: bool) -> tuple[list[bytes], JsonDict]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:29]}", "created": int(time.time()), "model": model}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    whole = {**base, "object": "chat.completion", "usage": usage,
             "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}]}

    def chunk(delta: JsonDict, finish_reason: str | None = None) -> bytes:
        return _sse({**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    events = [chunk({"role": "assistant", "content": REPLY}), chunk({}, "stop")]
    if include_usage:
        events.append(_sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
    return [*events, _sse("[DONE]")], whole


def _responses(model: str) -> tuple[list[bytes], JsonDict]:
    usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
    response = {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
                "status": "in_progress", "error": None, "incomplete_details": None, "model": model, "output": [],
                "usage": None}
    part = {"type": "output_text", "annotations": [], "text": REPLY}
    item_id = f"msg_{uuid.uuid4().hex}"
    item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
    whole = {**response, "status": "completed", "output": [item], "usage": usage}
    at = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[JsonDict] = [
        {"type": "response.created", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "status": "in_progress",
                                                                           "content": []}},
        {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
        {"type": "response.output_text.delta", **at, "delta": REPLY},
        {"type": "response.output_text.done", **at, "text": REPLY},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": whole},
    ]
    return [_sse({**event, "sequence_number": number}, event["type"]) for number, event in enumerate(events)], whole
