"""A fake model provider for tests: OpenAI- and Anthropic-style HTTP APIs on 127.0.0.1.

Mimics, on one server (every OpenAI path also without /v1: some clients put /v1 in the base
URL, some do not):
- OpenAI Chat Completions: `POST /v1/chat/completions`, `Authorization: Bearer <key>`; a
  `chat.completion` object, or with `"stream": true` Server-Sent Events
  `data: {chat.completion.chunk}` lines ending with `data: [DONE]` (plus a usage chunk when
  `stream_options.include_usage`).
- OpenAI Responses (OpenClaw's "openai-responses" adapter): `POST /v1/responses`; a `response`
  object, or streamed named events response.created, response.in_progress,
  response.output_item.added, response.content_part.added, response.output_text.delta ...,
  response.output_text.done, response.content_part.done, response.output_item.done,
  response.completed, each with a `sequence_number` (and no [DONE]).
- Anthropic Messages: `POST /v1/messages` (or `/messages`), `x-api-key: <key>` (or a Bearer token) and
  `anthropic-version`; a `message` object, or with `"stream": true` the named events
  message_start, content_block_start, ping, content_block_delta (text_delta) ...,
  content_block_stop, message_delta (stop_reason, usage), message_stop.
- `GET /v1/models` (and `/v1/models/{id}`) in the shape of whichever provider the request
  looks like (an `anthropic-version` or `x-api-key` header means Anthropic).
Errors use each provider's JSON shape: OpenAI `{"error": {"message", "type", "param",
"code"}}`, Anthropic `{"type": "error", "error": {"type", "message"}, "request_id"}`; any other
path answers 404 in that shape, is recorded too, so a test can see what a client tried, and is
logged to stderr. `expected_key` (alias `expected_api_key`): when set, any other key gets 401.

The answer is `reply`: a string, or a function of what the human wrote (by default
"fake reply to: <that text>"). What the human wrote is the last user message, except that agent
runtimes wrap it: OpenClaw (2026.9) prefixes a "[time] Conversation info: ```json ...```"
envelope and appends a user item of internal context; `ModelRequest.user_text` drops both,
`last_user_text` keeps the raw last user message. Every request is kept in `requests`.

Known gaps: no tool calls, images, logprobs, n > 1 or reasoning items; no stored responses
(previous_response_id is ignored) or legacy completions; any model id is accepted (ids change
too often to check); token counts are rough (4 characters a token); a stream fails mid-answer only
by its connection being cut (`drop_next_stream`), never with an error event.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JsonDict = dict[str, Any]
Reply = str | Callable[[str], str]

LOOPBACK = "127.0.0.1"
DEFAULT_OPENAI_MODELS = ("gpt-4o-mini", "gpt-4.1-mini")
DEFAULT_ANTHROPIC_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5")
OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username. You can obtain an API key "
    "from https://platform.openai.com/account/api-keys."
)
# OpenAI's error "type" and "code" for the statuses a test may ask for
OPENAI_ERRORS = {
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None), 429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None), 503: ("server_error", None),
}
ANTHROPIC_ERRORS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
    529: "overloaded_error",
}


@dataclass
class ModelRequest:
    """One request as the fake received it."""

    style: str  # "openai" or "anthropic"
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: JsonDict | None
    api_key: str | None  # from "Authorization: Bearer" (OpenAI) or "x-api-key" (Anthropic)
    status: int = 200  # what the fake answered

    @property
    def model(self) -> str | None:
        return (self.body or {}).get("model")

    @property
    def stream(self) -> bool:
        return bool((self.body or {}).get("stream"))

    @property
    def last_user_text(self) -> str:
        """The raw text of the last user message."""
        texts = user_texts(self.body or {})
        return texts[-1] if texts else ""

    @property
    def user_text(self) -> str:
        """What the human wrote: the last user message that is not injected context, unwrapped."""
        texts = [t for t in user_texts(self.body or {}) if not t.lstrip().startswith(OPENCLAW_CONTEXT_BLOCK)]
        return OPENCLAW_ENVELOPE.sub("", texts[-1]) if texts else ""


RecordedRequest = ModelRequest  # the name some tests use

OPENCLAW_CONTEXT_BLOCK = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"
OPENCLAW_ENVELOPE = re.compile(
    r"^(?:\[[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?: [\w/+-]+)?\]\s*)?"  # [Tue 2026-11-24 00:01 UTC]
    r"(?:Conversation info:[^\n]*\n```json\n.*?\n```\s*)?", re.DOTALL)


def user_texts(body: JsonDict) -> list[str]:
    """The texts of the user messages (Chat Completions, Responses and Messages bodies alike);
    content may be a string or a list of text parts."""
    if isinstance(body.get("input"), str):  # the Responses API takes a bare string too
        return [body["input"]]
    texts = []
    for message in body.get("messages") or body.get("input") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content
                              if isinstance(part, dict) and part.get("type") in ("text", "input_text"))
        if isinstance(content, str):
            texts.append(content)
    return texts


_BY_STATUS: Any = object()  # an OpenAI error code taken from OPENAI_ERRORS


class _ProviderError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: Any = _BY_STATUS) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def _error_response(style: str, error: _ProviderError) -> web.Response:
    request_id = "req_" + uuid.uuid4().hex[:24]
    if style == "anthropic":
        body = {"type": "error", "error": {"type": ANTHROPIC_ERRORS.get(error.status, "api_error"),
                                           "message": error.message}, "request_id": request_id}
        return web.json_response(body, status=error.status, headers={"request-id": request_id})
    kind, code = OPENAI_ERRORS.get(error.status, ("server_error", None))
    code = code if error.code is _BY_STATUS else error.code
    body = {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}
    return web.json_response(body, status=error.status, headers={"x-request-id": request_id})


def _masked(key: str) -> str:
    """How OpenAI echoes a wrong key: never whole."""
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)


def _pieces(text: str) -> list[str]:
    """Stream deltas: a word with its following space each, as providers stream tokens."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _sse(data: JsonDict | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return ((f"event: {event}\n" if event else "") + f"data: {payload}\n\n").encode()


class FakeModel:
    """`async with FakeModel() as model:`; point clients at `model.url` (OpenAI SDKs at
    `f"{model.url}/v1"`, the Anthropic SDK at `model.url`)."""

    def __init__(self, reply: Reply | None = None, *, expected_api_key: str | None = None,
                 expected_key: str | None = None, delay_s: float = 0.0, chunk_delay_s: float = 0.0) -> None:
        self.reply: Reply = reply if reply is not None else (lambda text: f"fake reply to: {text}")
        self.expected_api_key = expected_api_key or expected_key  # when set, any other key answers 401
        self.delay_s = delay_s  # before answering at all
        self.chunk_delay_s = chunk_delay_s  # between streamed deltas
        self.openai_models: list[str] = list(DEFAULT_OPENAI_MODELS)
        self.anthropic_models: list[str] = list(DEFAULT_ANTHROPIC_MODELS)
        self.requests: list[ModelRequest] = []
        self._failures: list[tuple[int, str | None]] = []
        self._drops: list[int] = []  # streams to cut after this many events
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def expected_key(self) -> str | None:
        """The same as `expected_api_key`."""
        return self.expected_api_key

    @expected_key.setter
    def expected_key(self, key: str | None) -> None:
        self.expected_api_key = key

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeModel is not started: use `async with FakeModel() as model`")
        return f"http://{LOOPBACK}:{self._port}"

    def fail_next(self, status: int = 500, *, times: int = 1, message: str | None = None) -> None:
        """The next `times` completion requests answer `status` in the provider's error shape."""
        self._failures.extend([(status, message)] * times)

    def drop_next_stream(self, after_events: int = 3) -> None:
        """The next streamed answer stops after `after_events` events: its connection is cut, as a
        provider's that fails mid-answer is."""
        self._drops.append(after_events)

    async def wait_for_request(self, predicate: Callable[[ModelRequest], bool] | None = None,
                               timeout: float = 10.0) -> ModelRequest:
        """The first recorded request that matches, waiting for it up to `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = next((r for r in self.requests if predicate is None or predicate(r)), None)
            if found is not None:
                return found
            if loop.time() >= deadline:
                raise TimeoutError(f"no matching model request in {timeout}s; got {[r.path for r in self.requests]}")
            arrived = self._arrived  # taken before waiting: a request arriving now still wakes us
            try:
                await asyncio.wait_for(arrived.wait(), deadline - loop.time())
            except TimeoutError:
                pass

    async def start(self) -> FakeModel:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/chat/completions", self._openai_chat)
        app.router.add_post("/v1/responses", self._openai_responses)
        app.router.add_post("/responses", self._openai_responses)
        app.router.add_post("/v1/messages", self._anthropic_messages)
        app.router.add_post("/messages", self._anthropic_messages)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/models", self._list_models)
        app.router.add_get("/v1/models/{model_id:.+}", self._get_model)
        app.router.add_get("/models/{model_id:.+}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, 0).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeModel:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- common steps ------------------------------------------------------------------------------
    async def _record(self, request: web.Request, style: str) -> ModelRequest:
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = None
        if request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        bearer = headers.get("authorization", "")
        bearer_key = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
        api_key = (headers.get("x-api-key") or bearer_key) if style == "anthropic" else bearer_key
        recorded = ModelRequest(style, request.method, request.path, headers, body, api_key)
        self.requests.append(recorded)
        self._arrived.set()  # wakes every waiter; later waiters wait on a fresh event
        self._arrived = asyncio.Event()
        return recorded

    def _check_key(self, recorded: ModelRequest) -> None:
        key = recorded.api_key
        if recorded.style == "anthropic":
            if not key:
                raise _ProviderError(401, "x-api-key header is required")
            if self.expected_api_key is not None and key != self.expected_api_key:
                raise _ProviderError(401, "invalid x-api-key")
            if "anthropic-version" not in recorded.headers:
                raise _ProviderError(400, "anthropic-version: header is required")
            return
        if not key:
            raise _ProviderError(401, OPENAI_NO_KEY, code=None)
        if self.expected_api_key is not None and key != self.expected_api_key:
            raise _ProviderError(401, f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                                      "https://platform.openai.com/account/api-keys.", code="invalid_api_key")

    async def _before_answer(self, recorded: ModelRequest) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self._check_key(recorded)
        if self._failures:
            status, message = self._failures.pop(0)
            default = ("Overloaded" if status == 529 else "Internal server error") if recorded.style == "anthropic" \
                else "The server had an error while processing your request. Sorry about that!"
            raise _ProviderError(status, message or default)

    def _reply_to(self, recorded: ModelRequest) -> str:
        return self.reply(recorded.user_text) if callable(self.reply) else self.reply

    async def _guarded(self, request: web.Request, style: str, answer: Callable[..., Any]) -> web.StreamResponse:
        recorded = await self._record(request, style)
        try:
            await self._before_answer(recorded)
            if not isinstance(recorded.body, dict):
                raise _ProviderError(400, "We could not parse the JSON body of your request." if style == "openai"
                                     else "Request body must be a JSON object")
            return await answer(request, recorded)
        except _ProviderError as error:
            recorded.status = error.status
            return _error_response(style, error)

    async def _stream(self, request: web.Request, events: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        cut_after = self._drops.pop(0) if self._drops else None
        try:
            for number, event in enumerate(events):
                if number == cut_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(event)
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client stopped reading: a normal end of a stream
        return response

    # -- OpenAI ----------------------------------------------------------------------------------------
    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, "openai", self._openai_answer)

    async def _openai_answer(self, request: web.Request, recorded: ModelRequest) -> web.StreamResponse:
        body = recorded.body or {}
        if not body.get("model"):
            raise _ProviderError(400, "you must provide a model parameter")
        if not isinstance(body.get("messages"), list):
            raise _ProviderError(400, "Missing required parameter: 'messages'.", param="messages",
                                 code="missing_required_parameter")
        text = self._reply_to(recorded)
        base = {"id": "chatcmpl-" + uuid.uuid4().hex[:29], "created": int(time.time()), "model": body["model"],
                "system_fingerprint": "fp_fake"}
        prompt_tokens = _tokens(json.dumps(body["messages"]))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text),
                 "total_tokens": prompt_tokens + _tokens(text)}
        if not recorded.stream:
            return web.json_response({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            })
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: JsonDict, finish_reason: str | None = None) -> JsonDict:
            data = {**base, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
            if include_usage:
                data["usage"] = None
            return data

        events = [_sse(chunk({"role": "assistant", "content": "", "refusal": None}))]
        events += [_sse(chunk({"content": piece})) for piece in _pieces(text)]
        events.append(_sse(chunk({}, "stop")))
        if include_usage:
            events.append(_sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        events.append(_sse("[DONE]"))
        return await self._stream(request, events)

    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, "openai", self._responses_answer)

    async def _responses_answer(self, request: web.Request, recorded: ModelRequest) -> web.StreamResponse:
        body = recorded.body or {}
        if not body.get("model"):
            raise _ProviderError(400, "Missing required parameter: 'model'.", param="model",
                                 code="missing_required_parameter")
        text = self._reply_to(recorded)
        input_tokens = _tokens(json.dumps(body.get("input", "")) + str(body.get("instructions") or ""))
        usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": _tokens(text), "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": input_tokens + _tokens(text)}
        response = {
            "id": "resp_" + uuid.uuid4().hex, "object": "response", "created_at": int(time.time()),
            "status": "in_progress", "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"], "output": [], "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "store": body.get("store", True), "temperature": 1.0,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "truncation": "disabled", "usage": None, "user": None, "metadata": {},
        }
        item_id = "msg_" + uuid.uuid4().hex
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        completed = {**response, "status": "completed", "output": [item], "usage": usage}
        if not recorded.stream:
            return web.json_response(completed)
        at = {"item_id": item_id, "output_index": 0, "content_index": 0}
        events: list[JsonDict] = [
            {"type": "response.created", "response": response},
            {"type": "response.in_progress", "response": response},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {**item, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
            *({"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []} for piece in _pieces(text)),
            {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **at, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": completed},
        ]
        return await self._stream(request, [_sse({**event, "sequence_number": number}, event["type"])
                                            for number, event in enumerate(events)])

    # -- Anthropic ---------------------------------------------------------------------------------------
    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, "anthropic", self._anthropic_answer)

    async def _anthropic_answer(self, request: web.Request, recorded: ModelRequest) -> web.StreamResponse:
        body = recorded.body or {}
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                raise _ProviderError(400, f"{field}: Field required")
        text = self._reply_to(recorded)
        input_tokens = _tokens(json.dumps(body["messages"]) + json.dumps(body.get("system", "")))
        message = {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                   "model": body["model"], "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 1}}
        if not recorded.stream:
            message.update(content=[{"type": "text", "text": text}], stop_reason="end_turn")
            message["usage"]["output_tokens"] = _tokens(text)
            return web.json_response(message, headers={"request-id": "req_" + uuid.uuid4().hex[:24]})
        events = [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ]
        events += [_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                        "content_block_delta") for piece in _pieces(text)]
        events += [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                  "usage": {"output_tokens": _tokens(text)}}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return await self._stream(request, events)

    # -- models ------------------------------------------------------------------------------------------
    @staticmethod
    def _style_of(request: web.Request) -> str:
        return "anthropic" if "anthropic-version" in request.headers or "x-api-key" in request.headers else "openai"

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        style = self._style_of(request)

        async def answer(request: web.Request, recorded: ModelRequest) -> web.Response:
            if style == "anthropic":
                data = [self._anthropic_model(m) for m in self.anthropic_models]
                return web.json_response({"data": data, "has_more": False,
                                          "first_id": data[0]["id"] if data else None,
                                          "last_id": data[-1]["id"] if data else None})
            return web.json_response({"object": "list", "data": [self._openai_model(m) for m in self.openai_models]})

        return await self._guarded_get(request, style, answer)

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        style, model_id = self._style_of(request), request.match_info["model_id"]

        async def answer(request: web.Request, recorded: ModelRequest) -> web.Response:
            if style == "anthropic":
                if model_id not in self.anthropic_models:
                    raise _ProviderError(404, f"model: {model_id}")
                return web.json_response(self._anthropic_model(model_id))
            if model_id not in self.openai_models:
                raise _ProviderError(404, f"The model '{model_id}' does not exist", param="model",
                                     code="model_not_found")
            return web.json_response(self._openai_model(model_id))

        return await self._guarded_get(request, style, answer)

    async def _unknown_path(self, request: web.Request) -> web.StreamResponse:
        style = "anthropic" if request.path.startswith(("/v1/messages", "/messages")) else self._style_of(request)
        recorded = await self._record(request, style)
        print(f"[fake model] unknown path {request.method} {request.path}: answered 404", file=sys.stderr, flush=True)
        recorded.status = 404
        message = "Not Found" if style == "anthropic" else f"Invalid URL ({request.method} {request.path})"
        return _error_response(style, _ProviderError(404, message))

    async def _guarded_get(self, request: web.Request, style: str, answer: Callable[..., Any]) -> web.StreamResponse:
        recorded = await self._record(request, style)
        try:
            self._check_key(recorded)
            return await answer(request, recorded)
        except _ProviderError as error:
            recorded.status = error.status
            return _error_response(style, error)

    @staticmethod
    def _openai_model(model_id: str) -> JsonDict:
        return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "system"}

    @staticmethod
    def _anthropic_model(model_id: str) -> JsonDict:
        return {"type": "model", "id": model_id, "display_name": model_id.replace("-", " ").title(),
                "created_at": "2025-01-01T00:00:00Z"}
