"""Every pattern applied to outside input (log lines, emails, keys, bot tokens) takes time linear
in its input: a megabyte of the worst text for it is done in well under a second, where a
pattern that backtracks would take minutes and stall the event loop meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from accounts.users import Accounts
from db.errors import InvalidInput
from db.redaction import _PATTERNS, redact
from provisioner.providers import PROVIDERS
from provisioner.telegram_check import check_token_shape

MB = 1 << 20
BOUND = 1.0  # seconds; quadratic work on a megabyte takes minutes

ADVERSARIAL = {
    "digits": "1" * MB,
    "digits then a colon": "1" * MB + ":",
    "digits, colon, short tail": ("1" * 1000 + ":" + "a" * 29 + " ") * (MB // 1031),
    "colon-separated digits": "12:" * (MB // 3),
    "letters": "a" * MB,
    "an email's pieces": "a@a." * (MB // 4),
    "at signs and dots": "a@" + "a." * (MB // 2),
    "dots, then a second at sign": "a@" + "a." * (MB // 2) + "@",
    "dots, then a blank": "a@" + "a." * (MB // 2) + " a",
    "sk- and a long tail": "sk-" + "a" * MB,
    "sk- repeated": "sk-" * (MB // 3),
    "sk-ant- and a long tail": "sk-ant-" + "A" * MB,
    "stripe-ish": "sk_live_" * (MB // 8),
    "bearer and blanks": "Bearer " + " " * MB,
    "cf_ and a long tail": "cf_" + "-" * MB,
}


def _elapsed(check: Callable[[str], object], text: str) -> float:
    start = time.perf_counter()
    try:
        check(text)
    except InvalidInput:
        pass
    return time.perf_counter() - start


async def _register(text: str) -> float:
    start = time.perf_counter()
    with pytest.raises(InvalidInput):  # refused on its shape, before any database is touched
        await Accounts(sessions=None).register(text, "correct horse battery")  # type: ignore[arg-type]
    return time.perf_counter() - start


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
async def test_email_validation_is_linear(text: str) -> None:
    assert await _register(text) < BOUND


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_redaction_is_linear(text: str) -> None:
    assert _elapsed(redact, text) < BOUND * len(_PATTERNS)  # a pass over the text for each pattern


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_bot_token_shape_check_is_linear(text: str) -> None:
    assert _elapsed(check_token_shape, text) < BOUND


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda provider: provider.id)
def test_key_shape_checks_are_linear(provider, text: str) -> None:
    assert _elapsed(provider.check_key_shape, text) < BOUND
