"""parse_mode=HTML as Telegram's server parses it, error messages included."""

from __future__ import annotations

from tests.fakes.telegram.protocol import JsonDict
from tests.fakes.telegram.text import (
    EntityParseError,
    Output,
    byte_offset,
    sorted_entities,
)

_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "span": "spoiler",
    "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(src: str, start: int) -> tuple[str, int] | None:
    """(character, length) for an entity at src[start] == "&", or None: then "&" is plain text."""
    end = src.find(";", start + 1, start + 12)
    if end == -1:
        return None
    name = src[start + 1:end]
    if name.startswith("#"):
        digits = name[1:]
        try:
            code = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits)
        except ValueError:
            return None
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), end - start + 1
    if name in _HTML_NAMED_ENTITIES:
        return _HTML_NAMED_ENTITIES[name], end - start + 1
    return None


def _unescape_html(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        decoded = _decode_html_entity(value, i) if value[i] == "&" else None
        if decoded:
            out.append(decoded[0])
            i += decoded[1]
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _html_attributes(src: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Attributes from src[i] (just after the tag name) up to ">"; returns them and the index of ">"."""
    attributes: dict[str, str] = {}
    n = len(src)

    def unclosed() -> EntityParseError:
        return EntityParseError(f'Unclosed start tag "{tag}" at byte offset {byte_offset(src, begin)}')

    while True:
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise unclosed()
        if src[i] == ">":
            return attributes, i
        start = i
        while i < n and not src[i].isspace() and src[i] not in "=>":
            i += 1
        name = src[start:i].lower()
        if not name:
            raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {byte_offset(src, begin)}')
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise unclosed()
        if src[i] != "=":
            attributes[name] = ""  # a valueless attribute, as in <blockquote expandable>
            continue
        i += 1
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise unclosed()
        if src[i] in "'\"":
            end = src.find(src[i], i + 1)
            if end == -1:
                raise unclosed()
            value, i = src[i + 1:end], end + 1
        else:
            start = i
            while i < n and not src[i].isspace() and src[i] != ">":
                i += 1
            value = src[start:i]
        attributes[name] = _unescape_html(value)


def parse_html(src: str) -> tuple[str, list[JsonDict]]:
    out = Output()
    entities: list[JsonDict] = []
    open_tags: list[JsonDict] = []
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "&":
            decoded = _decode_html_entity(src, i)
            if decoded:
                out.add(decoded[0])
                i += decoded[1]
                continue
        if char != "<":
            out.add(char)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and src[i] == "/":
            if not open_tags:
                raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(src, begin)}")
            j = i + 1
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            name = src[i + 1:j].lower()
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(src, begin)}")
            opened = open_tags[-1]
            if name and name != opened["tag"]:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {byte_offset(src, begin)}, '
                    f'expected "</{opened["tag"]}>", found "</{name}>"'
                )
            open_tags.pop()
            i = j + 1
            entity = _html_entity(opened, out, open_tags[-1] if open_tags else None)
            if entity:
                entities.append(entity)
            continue
        j = i
        while j < n and not src[j].isspace() and src[j] != ">":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(src, begin)}")
        tag = src[i:j].lower()
        if tag not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {byte_offset(src, begin)}')
        attributes, j = _html_attributes(src, j, tag, begin)
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(src, begin)}')
        open_tags.append({"tag": tag, "attributes": attributes, "offset": out.u16, "part": len(out.parts)})
        i = j + 1
    if open_tags:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]["tag"]}"')
    return out.text, sorted_entities(entities)


def _html_entity(opened: JsonDict, out: Output, parent: JsonDict | None) -> JsonDict | None:
    tag, attributes = opened["tag"], opened["attributes"]
    length = out.u16 - opened["offset"]
    language = attributes.get("class", "")
    if tag == "code" and parent and parent["tag"] == "pre" and language.startswith("language-"):
        parent["language"] = language.removeprefix("language-")  # <pre><code class=...> is one entity
        return None
    if length <= 0:
        return None  # Telegram drops empty entities
    entity: JsonDict = {"type": _HTML_TAGS[tag], "offset": opened["offset"], "length": length}
    if tag == "a":
        entity["url"] = attributes.get("href") or out.since(opened["part"])
    elif tag == "pre" and opened.get("language"):
        entity["language"] = opened["language"]
    elif tag == "blockquote" and "expandable" in attributes:
        entity["type"] = "expandable_blockquote"
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attributes.get("emoji-id", "")
    return entity
