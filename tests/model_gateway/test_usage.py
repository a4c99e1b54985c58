"""Usage read from providers' responses: the fake provider's real answers, streamed and not, fed
in chunks split anywhere; the providers' documented shapes; and what a stream may throw at the
reader (other line ends, a line over the cap, garbage, a cut, ten megabytes)."""

from __future__ import annotations

import json
import random

import aiohttp
import pytest

from model_gateway.usage import (
    ANTHROPIC_MESSAGES,
    MAX_LINE,
    OPENAI_COMPLETIONS,
    OPENAI_RESPONSES,
    STYLES,
    StreamMeter,
    Usage,
    asking_for_usage,
    is_streamed,
    requested_model,
    usage_of_body,
)
from tests.fakes.model import FakeModel

KEY = "sk-test-usage-0123456789"
USER_TEXT = "How are you today? Tell me at some length."
REPLY = "Very well, thank you for asking; " * 40
# path, body and headers of one request in each style, as OpenClaw's adapters send them
REQUESTS = {
    OPENAI_COMPLETIONS: ("/v1/chat/completions",
                         {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": USER_TEXT}]},
                         {"Authorization": f"Bearer {KEY}"}),
    OPENAI_RESPONSES: ("/v1/responses",
                       {"model": "gpt-4.1-mini", "input": [{"role": "user", "content": USER_TEXT}],
                        "instructions": "Be brief."},
                       {"Authorization": f"Bearer {KEY}"}),
    ANTHROPIC_MESSAGES: ("/v1/messages",
                         {"model": "claude-haiku-4-5", "max_tokens": 512, "system": "Be brief.",
                          "messages": [{"role": "user", "content": USER_TEXT}]},
                         {"x-api-key": KEY, "anthropic-version": "2023-06-01"}),
}


def _pieces(raw: bytes, rng: random.Random) -> list[bytes]:
    """`raw` cut at random places, a third of the pieces one byte long (mid-line, mid-character)."""
    pieces, at = [], 0
    while at < len(raw):
        size = 1 if rng.random() < 1 / 3 else rng.randint(2, 300)
        pieces.append(raw[at:at + size])
        at += size
    return pieces


def _metered(style: str, pieces: list[bytes]) -> StreamMeter:
    meter = StreamMeter(style)
    for piece in pieces:
        meter.feed(piece)
    return meter


def _stream(*events: tuple[str | None, object], line_end: str = "\n") -> bytes:
    """Server-Sent Events: (event name or None, data as JSON or a ready string)."""
    text = ""
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        text += (f"event: {name}{line_end}" if name else "") + f"data: {payload}{line_end}{line_end}"
    return text.encode()


def _expected(style: str, usage: dict) -> Usage:
    """What a provider's usage object says, read by its documented field names."""
    if style == ANTHROPIC_MESSAGES:
        return Usage(usage["input_tokens"], usage["output_tokens"], usage.get("cache_read_input_tokens") or 0,
                     usage.get("cache_creation_input_tokens") or 0)
    prefix = "prompt" if style == OPENAI_COMPLETIONS else "input"
    output = "completion_tokens" if style == OPENAI_COMPLETIONS else "output_tokens"
    cached = (usage.get(f"{prefix}_tokens_details") or {}).get("cached_tokens", 0)
    return Usage(usage[f"{prefix}_tokens"] - cached, usage[output], cached)


def _streamed_usage_fields(style: str, raw: bytes) -> dict:
    """The usage fields the fake wrote in its stream, found the simple way (it writes one `data: `
    line an event, and `\\n` line ends)."""
    events = [json.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]
    if style == ANTHROPIC_MESSAGES:
        start = next(e["message"]["usage"] for e in events if e["type"] == "message_start")
        return {**start, **next(e["usage"] for e in events if e["type"] == "message_delta")}
    if style == OPENAI_COMPLETIONS:
        return next(e["usage"] for e in events if e.get("usage"))
    return next(e["response"]["usage"] for e in events if e["type"] == "response.completed")


@pytest.fixture
async def fake_model():
    async with FakeModel(reply=REPLY, expected_key=KEY) as model:
        yield model


async def _post(model: FakeModel, style: str, body: bytes) -> tuple[bytes, StreamMeter]:
    """The raw answer, and a meter fed with it as the network delivered it."""
    path, _, headers = REQUESTS[style]
    meter, raw = StreamMeter(style), b""
    async with aiohttp.ClientSession() as http:
        async with http.post(model.url + path, data=body,
                             headers={**headers, "Content-Type": "application/json"}) as answer:
            assert answer.status == 200, await answer.text()
            async for chunk in answer.content.iter_any():
                meter.feed(chunk)
                raw += chunk
    return raw, meter


# -- the fake provider's real answers -------------------------------------------------------------
@pytest.mark.parametrize("style", STYLES)
async def test_the_usage_of_the_fake_providers_answers_streamed_or_not(fake_model, style: str) -> None:
    _, request, _ = REQUESTS[style]
    whole, _ = await _post(fake_model, style, json.dumps(request).encode())
    streamed_request = json.dumps({**request, "stream": True}).encode()
    raw, network_meter = await _post(fake_model, style, asking_for_usage(style, streamed_request) or streamed_request)

    expected = _expected(style, json.loads(whole)["usage"])
    assert expected.output_tokens > 1 and expected.input_tokens > 1  # a real answer, not a default
    assert usage_of_body(style, whole) == expected
    assert _expected(style, _streamed_usage_fields(style, raw)) == expected  # the fake agrees with itself
    assert (network_meter.usage, network_meter.model, network_meter.completed) == (expected, request["model"], True)
    for seed in range(20):
        meter = _metered(style, _pieces(raw, random.Random(seed)))
        assert (meter.usage, meter.model, meter.completed, meter.dropped_lines) == \
            (expected, request["model"], True, 0), seed


async def test_a_chat_stream_not_asked_for_usage_reports_none(fake_model) -> None:
    _, request, _ = REQUESTS[OPENAI_COMPLETIONS]
    _, meter = await _post(fake_model, OPENAI_COMPLETIONS, json.dumps({**request, "stream": True}).encode())
    assert (meter.usage, meter.model, meter.completed) == (None, request["model"], True)
    assert meter.decoded_events == 1  # the first chunk, for the model: no other one could hold usage


# -- the providers' documented shapes --------------------------------------------------------------
ANTHROPIC_STREAM = _stream(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3000,
                  "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Grüße, 世界 🌍 — \"usage\": 5"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"}),
)
ANTHROPIC_USAGE = Usage(input_tokens=25, output_tokens=15, cache_read_tokens=3000, cache_write_tokens=1200)


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_an_anthropic_stream_split_at_every_byte(line_end: str) -> None:
    raw = ANTHROPIC_STREAM.replace(b"\n", line_end.encode())
    for cut in range(len(raw) + 1):  # mid-line, mid-character, between \r and \n
        meter = _metered(ANTHROPIC_MESSAGES, [raw[:cut], raw[cut:]])
        assert (meter.usage, meter.model, meter.completed) == (ANTHROPIC_USAGE, "claude-sonnet-4-5", True), cut
    one_byte_each = _metered(ANTHROPIC_MESSAGES, [raw[at:at + 1] for at in range(len(raw))])
    assert (one_byte_each.usage, one_byte_each.completed) == (ANTHROPIC_USAGE, True)
    assert one_byte_each.decoded_events == 3  # message_start, message_delta, message_stop: not the text


def test_anthropic_message_deltas_replace_the_counts_they_carry() -> None:
    """Newer API versions repeat input and cache counts in message_delta (cumulative, e.g. after
    server tools ran): each field is the latest value given, never a sum; null changes nothing."""
    start, *_, stop = ANTHROPIC_STREAM.split(b"\n\n")[:-1]
    raw = b"\n\n".join([
        start,
        _stream(("message_delta", {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 10}})).strip(),
        _stream(("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
            "input_tokens": 30, "cache_read_input_tokens": None, "output_tokens": 40}})).strip(),
        stop, b""])
    meter = _metered(ANTHROPIC_MESSAGES, [raw])
    assert meter.usage == Usage(input_tokens=30, output_tokens=40, cache_read_tokens=3000, cache_write_tokens=1200)
    assert meter.completed


def test_an_anthropic_message_with_cache_counts() -> None:
    body = json.dumps({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                       "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                       "usage": {"input_tokens": 25, "cache_creation_input_tokens": 1200,
                                 "cache_read_input_tokens": 3000, "output_tokens": 15,
                                 "cache_creation": {"ephemeral_5m_input_tokens": 1200,
                                                    "ephemeral_1h_input_tokens": 0}}}).encode()
    assert usage_of_body(ANTHROPIC_MESSAGES, body) == ANTHROPIC_USAGE


CHAT_BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
             "system_fingerprint": "fp_1"}
CHAT_USAGE = {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
              "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
CHAT_STREAM = _stream(
    (None, {**CHAT_BASE, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "finish_reason": None}], "usage": None}),
    (None, {**CHAT_BASE, "choices": [{"index": 0, "delta": {"content": 'He said "usage": 5'},
                                      "finish_reason": None}],
            "usage": None}),
    (None, {**CHAT_BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}),
    (None, {**CHAT_BASE, "choices": [], "usage": CHAT_USAGE}),
    (None, "[DONE]"),
)


def test_a_chat_completions_stream_moves_cached_tokens_out_of_the_prompt() -> None:
    meter = _metered(OPENAI_COMPLETIONS, _pieces(CHAT_STREAM, random.Random(1)))
    assert meter.usage == Usage(input_tokens=2006 - 1920, output_tokens=300, cache_read_tokens=1920)
    assert (meter.model, meter.completed) == ("gpt-4o-2024-08-06", True)
    assert meter.decoded_events == 2  # the first chunk (the model) and the usage chunk
    body = json.dumps({**CHAT_BASE, "object": "chat.completion", "usage": CHAT_USAGE,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                    "finish_reason": "stop"}]}).encode()
    assert usage_of_body(OPENAI_COMPLETIONS, body) == meter.usage


def test_moonshots_usage_in_the_last_choice_and_its_top_level_cached_tokens() -> None:
    usage = {"prompt_tokens": 19, "completion_tokens": 13, "total_tokens": 32, "cached_tokens": 10}
    raw = _stream(
        (None, {**CHAT_BASE, "model": "kimi-k2.6", "choices": [{"index": 0, "delta": {"content": "你好"},
                                                                  "finish_reason": None}]}),
        (None, {**CHAT_BASE, "model": "kimi-k2.6", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                                                  "usage": usage}]}),
        (None, "[DONE]"))
    meter = _metered(OPENAI_COMPLETIONS, [raw])
    assert (meter.usage, meter.model, meter.completed) == (Usage(9, 13, 10), "kimi-k2.6", True)
    body = json.dumps({**CHAT_BASE, "object": "chat.completion", "choices": [], "usage": usage}).encode()
    assert usage_of_body(OPENAI_COMPLETIONS, body) == Usage(9, 13, 10)


RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress",
            "model": "gpt-4.1-2025-04-14", "output": [], "usage": None}
RESPONSES_USAGE = {"input_tokens": 2500, "input_tokens_details": {"cached_tokens": 2048}, "output_tokens": 120,
                   "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 2620}
DELTA = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "delta": "response.completed"}  # as a text delta: named like the end, in quotes


def _responses_stream(end: str, status: str) -> bytes:
    return _stream(
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": RESPONSE}),
        ("response.output_text.delta", {**DELTA, "sequence_number": 1}),
        (end, {"type": end, "sequence_number": 2, "response": {**RESPONSE, "status": status,
                                                               "usage": RESPONSES_USAGE}}))


def test_a_responses_stream_moves_cached_tokens_out_of_the_input() -> None:
    meter = _metered(OPENAI_RESPONSES, _pieces(_responses_stream("response.completed", "completed"),
                                               random.Random(2)))
    assert meter.usage == Usage(input_tokens=2500 - 2048, output_tokens=120, cache_read_tokens=2048)
    assert (meter.model, meter.completed, meter.decoded_events) == ("gpt-4.1-2025-04-14", True, 2)
    body = json.dumps({**RESPONSE, "status": "completed", "usage": RESPONSES_USAGE}).encode()
    assert usage_of_body(OPENAI_RESPONSES, body) == meter.usage


@pytest.mark.parametrize("end", ["response.incomplete", "response.failed"])
def test_a_responses_stream_that_ends_otherwise_still_reports_usage(end: str) -> None:
    meter = _metered(OPENAI_RESPONSES, [_responses_stream(end, end.split(".")[1])])
    assert (meter.usage, meter.completed) == (Usage(452, 120, 2048), False)


def test_events_without_an_event_line_are_read_by_their_type() -> None:
    unnamed = b"".join(b"data: " + line[len(b"data: "):] + b"\n\n"
                       for line in _responses_stream("response.completed", "completed").split(b"\n")
                       if line.startswith(b"data: "))
    meter = _metered(OPENAI_RESPONSES, [unnamed])
    assert (meter.usage, meter.model, meter.completed) == (Usage(452, 120, 2048), "gpt-4.1-2025-04-14", True)
    assert meter.decoded_events == 3  # the delta names response.completed in its text: decoded, then passed over


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_the_rest_of_the_event_stream_format(line_end: str) -> None:
    """A byte-order mark, comments (keep-alives), `data:` without its space, an `id:`, and data
    over two lines (joined with a newline: still one JSON value), split at every byte."""
    raw = (b"\xef\xbb\xbf: keep-alive\n\n"
           b"event: message_start\nid: 1\ndata:" + json.dumps({"type": "message_start", "message": {
               "model": "claude-sonnet-4-5", "usage": {"input_tokens": 7, "output_tokens": 1}}}).encode() + b"\n\n"
           b": ping\n"
           b"event: message_delta\ndata: {\"type\": \"message_delta\",\ndata:  \"usage\": {\"output_tokens\": 9}}\n\n"
           b"event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n")
    raw = raw.replace(b"\n", line_end.encode())
    for cut in range(len(raw) + 1):
        meter = _metered(ANTHROPIC_MESSAGES, [raw[:cut], raw[cut:]])
        assert (meter.usage, meter.model, meter.completed) == (Usage(7, 9), "claude-sonnet-4-5", True), cut


# -- what a stream may throw at the reader ----------------------------------------------------------
def test_a_line_over_the_cap_is_dropped_and_reading_resumes_after_it() -> None:
    huge_delta = _stream(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": "x" * (2 * MAX_LINE)}}))
    start, rest = ANTHROPIC_STREAM.split(b"\n\n", 1)
    raw = start + b"\n\n" + huge_delta + rest
    meter = _metered(ANTHROPIC_MESSAGES, [raw[at:at + 65536] for at in range(0, len(raw), 65536)])
    assert (meter.usage, meter.completed, meter.dropped_lines) == (ANTHROPIC_USAGE, True, 1)
    whole_chunk = _metered(ANTHROPIC_MESSAGES, [raw])  # the long line arrives complete: dropped too
    assert (whole_chunk.usage, whole_chunk.completed, whole_chunk.dropped_lines) == (ANTHROPIC_USAGE, True, 1)


def test_a_line_of_exactly_the_cap_is_read() -> None:
    prefix, end = b'data: {"type": "message_stop"', b"}"
    line = prefix + b" " * (MAX_LINE - len(prefix) - len(end)) + end
    assert len(line) == MAX_LINE
    meter = _metered(ANTHROPIC_MESSAGES, [line[:10], line[10:], b"\r\n\r\n"])
    assert (meter.completed, meter.dropped_lines) == (True, 0)


GARBAGE_BODIES = [b"", b"not json", b"\xff\xfe\x00garbage", b"[" * 100_000, b"{" * 50_000, b"null", b"[]", b"42",
                  b'{"usage": "lots"}', b'{"usage": null}', b'{"usage": {}}', b'{"usage": [1, 2]}',
                  b'{"usage": {"input_tokens": true, "output_tokens": -3, "prompt_tokens": 1.5}}',
                  b'{"choices": [null, 1], "usage": {"prompt_tokens": "9"}}',
                  b'{"usage": {"completion_tokens": NaN}}']


@pytest.mark.parametrize("style", STYLES)
def test_garbage_reports_no_usage_and_raises_nothing(style: str) -> None:
    assert [usage_of_body(style, body) for body in GARBAGE_BODIES] == [None] * len(GARBAGE_BODIES)
    rng = random.Random(4)
    noise = bytes(rng.randrange(256) for _ in range(200_000))
    lines = b"".join(b"data: " + body.replace(b"\n", b" ") + b"\n\n" for body in GARBAGE_BODIES)
    structured = _stream(
        ("message_start", {"type": "message_start", "message": "not an object"}),
        ("message_delta", {"type": "message_delta", "usage": [1]}),
        ("response.completed", {"type": "response.completed", "response": [1]}),
        ("response.incomplete", {"type": "response.incomplete", "response": {"usage": {"input_tokens": -1}}}),
        (None, '{"usage": {"prompt_tokens": 3'),  # cut JSON
        (None, '{"usage": ' + "[" * 100_000),  # nested too deep for the decoder
    )
    meter = _metered(style, _pieces(noise + b"\n\n" + lines + structured, rng))
    assert (meter.usage, meter.completed) == (None, False)


def test_a_cut_stream_reports_what_it_had_reported() -> None:
    before_delta = ANTHROPIC_STREAM[:ANTHROPIC_STREAM.index(b"event: message_delta")]
    meter = _metered(ANTHROPIC_MESSAGES, [before_delta])
    assert (meter.usage, meter.completed) == (Usage(25, 1, 3000, 1200), False)  # message_start's counts

    before_done = CHAT_STREAM[:CHAT_STREAM.index(b"data: [DONE]")]
    meter = _metered(OPENAI_COMPLETIONS, [before_done])
    assert (meter.usage, meter.completed) == (Usage(86, 300, 1920), False)

    mid_usage_chunk = CHAT_STREAM[:CHAT_STREAM.index(b'"prompt_tokens_details"')]
    meter = _metered(OPENAI_COMPLETIONS, [mid_usage_chunk])
    assert (meter.usage, meter.model, meter.completed) == (None, "gpt-4o-2024-08-06", False)


def _ten_megabytes(style: str) -> tuple[bytes, Usage]:
    """A long answer's stream: about 10 MB of small text deltas, then the usage and the end."""
    if style == ANTHROPIC_MESSAGES:
        head, tail = ANTHROPIC_STREAM.split(b"event: content_block_stop")
        delta = _stream(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": "word "}}))
        return head + delta * (10_000_000 // len(delta)) + b"event: content_block_stop" + tail, ANTHROPIC_USAGE
    if style == OPENAI_COMPLETIONS:
        first, second, rest = CHAT_STREAM.split(b"\n\n", 2)
        return first + b"\n\n" + (second + b"\n\n") * (10_000_000 // len(second)) + rest, Usage(86, 300, 1920)
    created, delta, rest = _responses_stream("response.completed", "completed").split(b"\n\n", 2)
    return created + b"\n\n" + (delta + b"\n\n") * (10_000_000 // len(delta)) + rest, Usage(452, 120, 2048)


@pytest.mark.parametrize("style", STYLES)
def test_ten_megabytes_decode_only_the_events_that_matter(style: str) -> None:
    raw, expected = _ten_megabytes(style)
    assert len(raw) >= 9_900_000
    meter = _metered(style, [raw[at:at + 16384] for at in range(0, len(raw), 16384)])
    assert (meter.usage, meter.completed, meter.dropped_lines) == (expected, True, 0)
    # the work beyond scanning bytes does not grow with the stream: a handful of decoded events
    assert meter.decoded_events <= 3


# -- requests --------------------------------------------------------------------------------------
def test_asking_a_streamed_chat_request_for_usage() -> None:
    request = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Grüße 世界"}]}
    asked = asking_for_usage(OPENAI_COMPLETIONS, json.dumps(request).encode())
    assert json.loads(asked) == {**request, "stream_options": {"include_usage": True}}
    assert "世界".encode() in asked  # kept as UTF-8, not grown into \u escapes

    with_options = {**request, "stream_options": {"include_obfuscation": False, "include_usage": False}}
    asked = asking_for_usage(OPENAI_COMPLETIONS, json.dumps(with_options).encode())
    assert json.loads(asked)["stream_options"] == {"include_obfuscation": False, "include_usage": True}

    lone_surrogate = b'{"stream": true, "messages": [{"role": "user", "content": "\\ud800"}]}'
    asked = asking_for_usage(OPENAI_COMPLETIONS, lone_surrogate)
    assert json.loads(asked)["messages"][0]["content"] == "\ud800"


@pytest.mark.parametrize("style, body", [
    (OPENAI_COMPLETIONS, b'{"stream": true, "stream_options": {"include_usage": true}}'),  # asks already
    (OPENAI_COMPLETIONS, b'{"stream": false}'),
    (OPENAI_COMPLETIONS, b'{"messages": []}'),
    (OPENAI_COMPLETIONS, b'{"stream": "true"}'),
    (OPENAI_COMPLETIONS, b'{"stream": true, "stream_options": "usage"}'),  # the provider refuses it as is
    (OPENAI_COMPLETIONS, b'{"stream": true, "temperature": NaN}'),  # not JSON once written again
    (OPENAI_COMPLETIONS, b"[true]"),
    (OPENAI_COMPLETIONS, b"not json"),
    (OPENAI_RESPONSES, b'{"stream": true}'),  # reports usage unasked
    (ANTHROPIC_MESSAGES, b'{"stream": true}'),
])
def test_requests_left_as_they_are(style: str, body: bytes) -> None:
    assert asking_for_usage(style, body) is None


def test_the_requested_model_and_whether_it_streams() -> None:
    assert requested_model(b'{"model": "claude-sonnet-4-5", "stream": true}') == "claude-sonnet-4-5"
    long_name = json.dumps({"model": "m" * 129}).encode()
    for body in [long_name, b'{"model": ""}', b'{"model": 5}', b'["model"]', b"\xff", b""]:
        assert requested_model(body) is None
    assert requested_model(json.dumps({"model": "m" * 128}).encode()) == "m" * 128

    assert is_streamed(b'{"stream": true}')
    for body in [b'{"stream": false}', b'{"stream": "true"}', b'{"stream": 1}', b"{}", b"[]", b"junk"]:
        assert not is_streamed(body)


def test_usage_adds_up() -> None:
    assert Usage(1, 2, 3, 4) + Usage(10, 20, 30, 40) == Usage(11, 22, 33, 44)
    assert Usage(1, 2, 3, 4).total == 10 and Usage().total == 0


def test_an_unknown_style_is_a_mistake_in_the_caller() -> None:
    with pytest.raises(ValueError):
        StreamMeter("openai-chat")
    with pytest.raises(ValueError):
        usage_of_body("openai-chat", b"{}")
