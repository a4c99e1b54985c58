"""Text arithmetic the parse_mode parsers share: Telegram's UTF-16 lengths, the byte offsets its
error messages cite, and the text a parser builds."""

from __future__ import annotations

from tests.fakes.telegram.protocol import JsonDict


def utf16_len(text: str) -> int:
    """Telegram counts offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class EntityParseError(ValueError):
    """The text of "Bad Request: can't parse entities: <text>"."""


class Output:
    """Text being built by a parser, with its length in UTF-16 units."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.u16 = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.u16 += utf16_len(text)

    def since(self, part_index: int) -> str:
        return "".join(self.parts[part_index:])

    @property
    def text(self) -> str:
        return "".join(self.parts)


def sorted_entities(entities: list[JsonDict]) -> list[JsonDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))
