"""Text and entities as Telegram makes them: `parse_formatted` reads a parse_mode, `detect_entities`
adds what Telegram marks on its own (URLs, @mentions, /commands)."""

from __future__ import annotations

import re

from tests.fakes.telegram.html_mode import parse_html
from tests.fakes.telegram.markdown_mode import parse_markdown, parse_markdown_v2
from tests.fakes.telegram.protocol import JsonDict, bad_request
from tests.fakes.telegram.text import sorted_entities, utf16_len


def parse_formatted(text: str, parse_mode: str) -> tuple[str, list[JsonDict]]:
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise bad_request("unsupported parse_mode")


_AUTO_ENTITIES = (  # URLs first: a path inside a URL is not a /command
    ("url", re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?')\]]", re.IGNORECASE)),
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{3,31}\b")),
)
_NO_AUTO_INSIDE = frozenset({"code", "pre", "text_link", "url", "custom_emoji"})


def detect_entities(text: str, given: list[JsonDict] | None = None) -> list[JsonDict]:
    """Telegram marks /commands, URLs and @mentions in every text itself; adds them to `given`."""
    entities = list(given or [])
    blocked = [(e["offset"], e["offset"] + e["length"]) for e in entities if e.get("type") in _NO_AUTO_INSIDE]
    for kind, pattern in _AUTO_ENTITIES:
        for match in pattern.finditer(text):
            offset, length = utf16_len(text[:match.start()]), utf16_len(match.group())
            if any(start < offset + length and offset < end for start, end in blocked):
                continue
            entities.append({"type": kind, "offset": offset, "length": length})
            blocked.append((offset, offset + length))
    return sorted_entities(entities)
