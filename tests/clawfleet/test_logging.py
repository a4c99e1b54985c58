"""Logs are structured, and nothing token-shaped survives into them."""

import json
import logging
from contextlib import ExitStack

import pytest
import structlog

from db.redaction import redact
from tests.support.log_capture import platform_logs

BOT_TOKEN = "123456789:AAH" + "x" * 32
OPENAI_KEY = "sk-proj-" + "A1b2" * 10
ANTHROPIC_KEY = "sk-ant-api03-" + "Zz9_" * 10


@pytest.fixture
def captured_logs():
    with ExitStack() as stack:
        yield lambda fmt="console": stack.enter_context(platform_logs("DEBUG", fmt))


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (f"GET https://api.telegram.org/bot{BOT_TOKEN}/getMe", "bot123456789:[redacted]/getMe", BOT_TOKEN),
        (f"key={OPENAI_KEY} ok", "key=sk-[redacted] ok", OPENAI_KEY),
        (f"anthropic {ANTHROPIC_KEY}", "anthropic sk-[redacted]", ANTHROPIC_KEY),
        ("stripe sk_test_51Habcdefghijklmn", "stripe sk_test_[redacted]", "51Habcdefghijklmn"),
        ("whsec_abcdefghijklmnop", "whsec_[redacted]", "abcdefghijklmnop"),
        ("Authorization: Bearer cf_abcdefghijklmnopqrstuv", "Bearer cf_[redacted]", "abcdefghijklmnopqrstuv"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "Bearer [redacted]", "eyJhbGciOi"),
        ("at 12:34:56 the task took 120 ms", "at 12:34:56 the task took 120 ms", "[redacted]"),
    ],
)
def test_redact(text: str, kept: str, gone: str) -> None:
    assert kept in redact(text)
    assert gone not in redact(text)


def test_console_lines_are_redacted_for_our_events_and_library_records(captured_logs) -> None:
    stream = captured_logs("console")
    structlog.get_logger("clawfleet.test").info("deploy", token=BOT_TOKEN, step="start")
    logging.getLogger("some.library").warning("calling %s", f"/bot{BOT_TOKEN}/getUpdates")
    output = stream.getvalue()
    assert BOT_TOKEN not in output
    assert "deploy" in output and "step=start" in output and "calling /bot123456789:[redacted]" in output


def test_json_lines_are_structured_and_redacted(captured_logs) -> None:
    stream = captured_logs("json")
    structlog.get_logger("clawfleet.test").info("key checked", api_key=OPENAI_KEY, provider="openai")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "key checked" and line["provider"] == "openai" and line["level"] == "info"
    assert line["api_key"] == "sk-[redacted]"
    assert "timestamp" in line


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_tracebacks_are_redacted(captured_logs, fmt: str) -> None:
    stream = captured_logs(fmt)
    try:
        raise RuntimeError(f"provider refused {ANTHROPIC_KEY}")
    except RuntimeError:
        structlog.get_logger("clawfleet.test").exception("call failed")
        logging.getLogger("aiohttp.server").exception("handler failed")
    output = stream.getvalue()
    assert "RuntimeError" in output
    assert ANTHROPIC_KEY not in output


def test_httpx_is_kept_quiet(captured_logs) -> None:
    stream = captured_logs("console")
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/getMe", BOT_TOKEN)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert "HTTP Request" not in stream.getvalue()
