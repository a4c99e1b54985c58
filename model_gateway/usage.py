"""Token usage read from model providers' responses, streamed or not, and the request fields
the gateway needs to meter them.

The API styles, as OpenClaw names them:
- "anthropic-messages": the message's `usage`. Streamed, message_start's `message.usage`
  (output_tokens is usually 1 there), each field then replaced by the latest message_delta
  `usage` that has it: those counts are cumulative, not increments. The stream ends with
  message_stop.
- "openai-completions" (Chat Completions): `usage`. Streamed, a last chunk with `choices: []`
  carries it when the request asked with `stream_options.include_usage` (`asking_for_usage`
  adds that); Moonshot/Kimi put it in `choices[0].usage` instead. The stream ends with
  `data: [DONE]`.
- "openai-responses": the response's `usage`. Streamed, that of the response in
  response.completed (or response.incomplete / response.failed). The stream ends with
  response.completed.

`Usage.input_tokens` leaves cached tokens out: Anthropic counts them apart already; OpenAI's
prompt_tokens / input_tokens include `*_tokens_details.cached_tokens` (Moonshot: a top-level
`cached_tokens`), which are moved to cache_read_tokens. OpenAI reports no cache writes.

`StreamMeter` reads the Server-Sent Events as they arrive, in chunks split anywhere, in time
linear in the stream and in bounded memory: it keeps the unfinished line (one longer than
MAX_LINE is dropped and counted) and the current event's data, and json-decodes only the events
that can carry usage, the model or the end. Nothing here raises on what it is given to read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ANTHROPIC_MESSAGES = "anthropic-messages"
OPENAI_COMPLETIONS = "openai-completions"
OPENAI_RESPONSES = "openai-responses"
STYLES = (ANTHROPIC_MESSAGES, OPENAI_COMPLETIONS, OPENAI_RESPONSES)

MAX_LINE = 1 << 20  # bytes: a longer SSE line (or one event's data) is dropped
MAX_MODEL_NAME = 128  # characters
UTF8_BOM = b"\xef\xbb\xbf"

# Anthropic's usage fields, by the names Usage gives them
ANTHROPIC_COUNTS = {"input_tokens": "input_tokens", "output_tokens": "output_tokens",
                    "cache_read_input_tokens": "cache_read_tokens",
                    "cache_creation_input_tokens": "cache_write_tokens"}
ANTHROPIC_EVENTS = (b"message_start", b"message_delta", b"message_stop")
RESPONSES_ENDS = ("response.completed", "response.incomplete", "response.failed")
RESPONSES_END_NAMES = tuple(end.encode() for end in RESPONSES_ENDS)
RESPONSES_END_TYPES = tuple(b'"%s"' % name for name in RESPONSES_END_NAMES)  # as they stand in the data
UNNAMED = (b"", b"message")  # an SSE event without an `event:` line is a "message"


@dataclass(frozen=True)
class Usage:
    """Tokens one response used; input_tokens excludes the cached ones."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens)

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


def usage_of_body(style: str, body: bytes) -> Usage | None:
    """The usage a non-streamed JSON response reports, None when it reports none."""
    _check_style(style)
    response = _decoded(body)
    if not isinstance(response, dict):
        return None
    if style == ANTHROPIC_MESSAGES:
        counts = _anthropic_counts(response.get("usage"))
        return Usage(**counts) if counts else None
    if style == OPENAI_COMPLETIONS:
        return _chat_usage(response)
    return _openai_usage(response.get("usage"))


def asking_for_usage(style: str, body: bytes) -> bytes | None:
    """The request re-encoded with `stream_options.include_usage` set, when it is a streamed Chat
    Completions request that does not ask for usage already (without it the stream reports
    none); None to send the body unchanged."""
    if style != OPENAI_COMPLETIONS:
        return None
    request = _decoded(body)
    if not isinstance(request, dict) or request.get("stream") is not True:
        return None
    options = request.get("stream_options")
    if options is None:
        options = {}
    elif not isinstance(options, dict):
        return None  # malformed: the provider refuses it as the client wrote it
    if options.get("include_usage") is True:
        return None
    request["stream_options"] = {**options, "include_usage": True}
    return _encoded(request)


def requested_model(body: bytes) -> str | None:
    """The request's `model`, when it is a plausible model name."""
    request = _decoded(body)
    return _model_name(request.get("model")) if isinstance(request, dict) else None


def is_streamed(body: bytes) -> bool:
    request = _decoded(body)
    return isinstance(request, dict) and request.get("stream") is True


class StreamMeter:
    """Reads one Server-Sent Events response, fed as it arrives: `feed(chunk)` for each chunk,
    then `usage`, `model` and `completed`."""

    def __init__(self, style: str) -> None:
        _check_style(style)
        self.style = style
        self.dropped_lines = 0  # lines (or events' data) over MAX_LINE, passed over
        self.decoded_events = 0  # events json-decoded: the work beyond scanning bytes
        self._usage: Usage | None = None
        self._model: str | None = None
        self._completed = False
        self._anthropic_counts: dict[str, int] = {}
        self._on_event: Callable[[bytes, bytes], None] = {
            ANTHROPIC_MESSAGES: self._on_anthropic_event, OPENAI_COMPLETIONS: self._on_chat_event,
            OPENAI_RESPONSES: self._on_responses_event}[style]
        # the line being received, and whether it is being dropped for its length
        self._line = bytearray()
        self._dropping_line = False
        self._after_cr = False  # the last chunk ended in \r: a \n starting the next one is its pair
        self._first_line = True
        # the event being received
        self._event_name = b""
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_spoiled = False  # a line of it was dropped

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @property
    def model(self) -> str | None:
        return self._model

    @property
    def completed(self) -> bool:
        return self._completed

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        # bytes.splitlines breaks at \n, \r\n and \r only: SSE's three line ends
        for piece in chunk.splitlines(keepends=True):
            if piece.endswith(b"\r\n"):
                self._end_line(piece[:-2])
            elif piece.endswith((b"\n", b"\r")):
                self._end_line(piece[:-1])
            else:  # the chunk's last line, unfinished
                self._hold(piece)

    # -- lines -------------------------------------------------------------------------------
    def _hold(self, piece: bytes) -> None:
        if self._dropping_line:
            return
        if len(self._line) + len(piece) > MAX_LINE:
            self._drop_line()
            self._dropping_line = True  # until its end
        else:
            self._line += piece

    def _end_line(self, tail: bytes) -> None:
        if self._dropping_line:
            self._dropping_line = False
            return
        if self._line:
            if len(self._line) + len(tail) > MAX_LINE:
                self._drop_line()
                return
            self._line += tail
            line = bytes(self._line)
            self._line.clear()
        elif len(tail) > MAX_LINE:
            self._drop_line()
            return
        else:
            line = tail
        self._take_line(line)

    def _drop_line(self) -> None:
        self._line.clear()
        self.dropped_lines += 1
        self._event_spoiled = True

    def _take_line(self, line: bytes) -> None:
        if self._first_line:
            self._first_line = False
            if line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM):]
        if not line:
            self._dispatch()
            return
        if line.startswith(b":"):
            return  # a comment: a keep-alive
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            if self._event_spoiled:
                return
            if self._data_size + len(value) > MAX_LINE:
                self._data.clear()
                self._drop_line()
                return
            self._data.append(value)
            self._data_size += len(value) + 1
        elif field == b"event":
            self._event_name = value

    def _dispatch(self) -> None:
        name, data, spoiled = self._event_name, self._data, self._event_spoiled
        self._event_name, self._data, self._data_size, self._event_spoiled = b"", [], 0, False
        if data and not spoiled:
            self._on_event(name, data[0] if len(data) == 1 else b"\n".join(data))

    # -- events --------------------------------------------------------------------------------
    def _decode(self, data: bytes) -> Any:
        self.decoded_events += 1
        return _decoded(data)

    def _take_model(self, model: object) -> None:
        name = _model_name(model)
        if name is not None:
            self._model = name

    def _on_anthropic_event(self, name: bytes, data: bytes) -> None:
        if name not in ANTHROPIC_EVENTS and (name not in UNNAMED or b'"message_' not in data):
            return  # content blocks, pings, errors: no usage in them
        event = self._decode(data)
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._take_model(message.get("model"))
                self._take_anthropic_usage(message.get("usage"))
        elif kind == "message_delta":
            self._take_anthropic_usage(event.get("usage"))
        elif kind == "message_stop":
            self._completed = True

    def _take_anthropic_usage(self, usage: object) -> None:
        counts = _anthropic_counts(usage)
        if counts:
            self._anthropic_counts.update(counts)
            self._usage = Usage(**self._anthropic_counts)

    def _on_chat_event(self, name: bytes, data: bytes) -> None:
        if len(data) <= 16 and data.strip() == b"[DONE]":
            self._completed = True
            return
        # every chunk names the model: decoding the first one that does is enough
        if not _may_report_usage(data) and (self._model is not None or b'"model"' not in data):
            return
        chunk = self._decode(data)
        if not isinstance(chunk, dict):
            return
        self._take_model(chunk.get("model"))
        usage = _chat_usage(chunk)
        if usage is not None:
            self._usage = usage

    def _on_responses_event(self, name: bytes, data: bytes) -> None:
        if not self._responses_event_matters(name, data):
            return
        event = self._decode(data)
        if not isinstance(event, dict) or not isinstance(event.get("response"), dict):
            return
        kind, response = event.get("type"), event["response"]
        self._take_model(response.get("model"))
        if kind in RESPONSES_ENDS:
            usage = _openai_usage(response.get("usage"))
            if usage is not None:
                self._usage = usage
        if kind == "response.completed":
            self._completed = True

    def _responses_event_matters(self, name: bytes, data: bytes) -> bool:
        """The ends carry usage; response.created the model, which later events repeat."""
        if name in UNNAMED:  # the type is only in the data
            return any(end in data for end in RESPONSES_END_TYPES) or (
                self._model is None and b'"response.created"' in data)
        return name in RESPONSES_END_NAMES or (
            self._model is None and name == b"response.created")


# -- reading providers' objects -------------------------------------------------------------------
def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown API style {style!r}: one of {', '.join(STYLES)}")


def _decoded(data: bytes) -> Any:
    """The JSON value, None for anything that is not JSON (bad UTF-8, nesting too deep too)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _encoded(value: Any) -> bytes | None:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, RecursionError):
        return None  # NaN or a float out of range: not JSON once written again
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate, escaped in the request: written escaped again
        return json.dumps(value, separators=(",", ":")).encode()


def _model_name(model: object) -> str | None:
    return model if isinstance(model, str) and 0 < len(model) <= MAX_MODEL_NAME else None


def _count(value: object) -> int | None:
    """A token count: a non-negative integer (JSON's true is not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _anthropic_counts(usage: object) -> dict[str, int]:
    """The counts an Anthropic `usage` object has, by Usage's field names."""
    if not isinstance(usage, dict):
        return {}
    counts = {ours: _count(usage.get(theirs)) for theirs, ours in ANTHROPIC_COUNTS.items()}
    return {field: count for field, count in counts.items() if count is not None}


def _openai_usage(usage: object) -> Usage | None:
    """An OpenAI `usage` object, of Chat Completions (prompt_/completion_tokens) or of Responses
    (input_/output_tokens)."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _count(usage.get("completion_tokens", usage.get("output_tokens")))
    if prompt is None and completion is None:
        return None
    details = usage.get("prompt_tokens_details", usage.get("input_tokens_details"))
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached is None:
        cached = _count(usage.get("cached_tokens"))  # where Moonshot reports them
    cached = min(cached or 0, prompt or 0)  # part of the prompt: never more than it
    return Usage(input_tokens=(prompt or 0) - cached, output_tokens=completion or 0, cache_read_tokens=cached)


def _chat_usage(completion: dict[str, Any]) -> Usage | None:
    """A Chat Completions object's usage: top-level, else (Moonshot's streams) the first choice's."""
    usage = _openai_usage(completion.get("usage"))
    if usage is None:
        choices = completion.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            usage = _openai_usage(choices[0].get("usage"))
    return usage


def _may_report_usage(data: bytes) -> bool:
    """Whether the event's data may hold `"usage": {...}`: the key followed by anything but null.
    A cheap test before decoding; what is decoded is checked anyway."""
    at = data.find(b'"usage"')
    while at != -1:
        after = at + len(b'"usage"')
        while after < len(data) and data[after] in b" \t\r\n:":
            after += 1
        if not data.startswith(b"n", after):
            return True
        at = data.find(b'"usage"', after)
    return False
