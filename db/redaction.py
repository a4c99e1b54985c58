"""Masks anything shaped like a credential in free text: log lines, gateway log tails, errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing

REDACTED = "[redacted]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Telegram bot tokens (also inside Bot API URLs, /bot<token>/...). The bot id before the
    # colon is public and useful when reading logs, so it stays. A match starts only where a run
    # of digits starts, so a long run is scanned once, not once from each of its digits.
    (re.compile(r"(?<!\d)(\d+):[A-Za-z0-9_-]{30,}"), r"\1:" + REDACTED),
    # Provider keys: OpenAI sk-..., sk-proj-..., Anthropic sk-ant-..., Moonshot sk-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-" + REDACTED),
    # Stripe secret, restricted and webhook signing keys.
    (re.compile(r"\b(sk|rk)_(live|test)_[A-Za-z0-9]{8,}"), r"\1_\2_" + REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9]{8,}"), "whsec_" + REDACTED),
    # ClawFleet's own API and session tokens (db.tokens makes them with this prefix).
    (re.compile(r"\bcf_[A-Za-z0-9_-]{16,}"), "cf_" + REDACTED),
    # Telegram link codes (accounts.login_links: "link-" and ten of its alphabet, any case).
    (re.compile(r"(?i)\blink-[2-9a-hjkmnp-z]{10}\b"), "link-" + REDACTED),
    # Authorization headers, whatever the scheme's token looks like.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
]


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`known`: secret values to mask wherever they appear, for those no pattern recognises
    (a gateway's own token is random text of no particular shape)."""
    for pattern, replacement in _PATTERNS:  # first: they keep what is useful (a bot's public id)
        text = pattern.sub(replacement, text)
    for secret in known:
        text = text.replace(secret, REDACTED)
    return text


async def redacted_lines(lines: AsyncIterator[str], known: Iterable[str] = ()) -> AsyncIterator[str]:
    """Each line redacted, for streams that leave the platform (gateway logs); closing this
    closes `lines` too, so a follower that stops reading stops the reading underneath."""
    known = sorted({secret for secret in known if len(secret) >= 8}, key=len, reverse=True)
    async with aclosing(lines):
        async for line in lines:
            yield redact(line, known)
