"""parse_mode=MarkdownV2 and the legacy Markdown as Telegram's server parses them, error messages included."""

from __future__ import annotations

from tests.fakes.telegram.protocol import JsonDict
from tests.fakes.telegram.text import (
    EntityParseError,
    Output,
    byte_offset,
    sorted_entities,
)

_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_NAMES = {  # how Telegram names an unclosed entity in its error message
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "text_link": "TextUrl", "custom_emoji": "CustomEmoji",
}


def _escapable(src: str, i: int) -> bool:
    return src[i] == "\\" and i + 1 < len(src) and 0 < ord(src[i + 1]) <= 126


def _skip_pre_header(src: str, i: int) -> tuple[int, str | None]:
    """After an opening ```: an optional language, then one line break, as Telegram skips them."""
    n, language = len(src), None
    end = i
    while end < n and not src[end].isspace() and src[end] != "`":
        end += 1
    if end != i and end < n and src[end] != "`":
        language, i = src[i:end], end
    if i < n and src[i] in "\r\n":
        i += 2 if i + 1 < n and src[i + 1] in "\r\n" and src[i + 1] != src[i] else 1
    return i, language


def parse_markdown_v2(src: str) -> tuple[str, list[JsonDict]]:
    out = Output()
    entities: list[JsonDict] = []
    open_entities: list[JsonDict] = []
    quote_offset: int | None = None  # a ">" block quote runs over consecutive ">" lines
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if _escapable(src, i):
            out.add(src[i + 1])
            i += 2
            continue
        top = open_entities[-1]["type"] if open_entities else None
        in_code = top in ("code", "pre")
        if char == ">" and not in_code and (i == 0 or src[i - 1] == "\n"):
            if quote_offset is None:
                quote_offset = out.u16
            i += 1
            continue
        if char == "\n" and quote_offset is not None and not src.startswith(">", i + 1):
            if out.u16 > quote_offset:
                entities.append({"type": "blockquote", "offset": quote_offset, "length": out.u16 - quote_offset})
            quote_offset = None
        reserved = "`" if in_code else _MDV2_RESERVED
        if char not in reserved:
            out.add(char)
            i += 1
            continue
        closes = top is not None and (
            (top == "bold" and char == "*")
            or (top == "italic" and char == "_" and not src.startswith("__", i))
            or (top == "underline" and src.startswith("__", i))
            or (top == "strikethrough" and char == "~")
            or (top == "spoiler" and src.startswith("||", i))
            or (top == "code" and char == "`")
            or (top == "pre" and src.startswith("```", i))
            or (top in ("text_link", "custom_emoji") and char == "]")
        )
        if not closes:
            i = _open_markdown_v2_entity(src, i, out, open_entities)
            continue
        opened = open_entities.pop()
        kind = opened["type"]
        i += {"underline": 2, "spoiler": 2, "pre": 3}.get(kind, 1)
        if kind in ("text_link", "custom_emoji"):
            if i < n and src[i] == "(":
                url_begin, url = i + 1, []
                i += 1
                while i < n and src[i] != ")":
                    if _escapable(src, i):
                        url.append(src[i + 1])
                        i += 2
                        continue
                    url.append(src[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(f"Can't find end of a URL at byte offset {byte_offset(src, url_begin)}")
                i += 1
                opened["argument"] = "".join(url)
            else:
                opened["argument"] = out.since(opened["part"])
        length = out.u16 - opened["offset"]
        if length > 0:
            entities.append(_markdown_entity(kind, opened["offset"], length, opened["argument"]))
    if open_entities:
        opened = open_entities[-1]
        name = "PreCode" if opened["type"] == "pre" and opened["argument"] else _MDV2_NAMES[opened["type"]]
        raise EntityParseError(f"Can't find end of {name} entity at byte offset {byte_offset(src, opened['begin'])}")
    if quote_offset is not None and out.u16 > quote_offset:
        entities.append({"type": "blockquote", "offset": quote_offset, "length": out.u16 - quote_offset})
    return out.text, sorted_entities(entities)


def _open_markdown_v2_entity(src: str, i: int, out: Output, open_entities: list[JsonDict]) -> int:
    char, begin, argument = src[i], i, None
    if char == "_" and src.startswith("__", i):
        kind, i = "underline", i + 2
    elif char == "_":
        kind, i = "italic", i + 1
    elif char == "*":
        kind, i = "bold", i + 1
    elif char == "~":
        kind, i = "strikethrough", i + 1
    elif char == "|" and src.startswith("||", i):
        kind, i = "spoiler", i + 2
    elif char == "[":
        kind, i = "text_link", i + 1
    elif char == "`" and src.startswith("```", i):
        kind = "pre"
        i, argument = _skip_pre_header(src, i + 3)
    elif char == "`":
        kind, i = "code", i + 1
    elif char == "!" and src.startswith("![", i):
        kind, i = "custom_emoji", i + 2
    else:
        raise EntityParseError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
    open_entities.append(
        {"type": kind, "offset": out.u16, "begin": begin, "argument": argument, "part": len(out.parts)})
    return i


def _markdown_entity(kind: str, offset: int, length: int, argument: str | None) -> JsonDict:
    entity: JsonDict = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        entity["url"] = argument or ""
    elif kind == "pre" and argument:
        entity["language"] = argument
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = (argument or "").rpartition("id=")[2]
    return entity


def parse_markdown(src: str) -> tuple[str, list[JsonDict]]:
    """The legacy "Markdown" mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = Output()
    entities: list[JsonDict] = []
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        begin, end_char, is_pre, language = i, "]" if char == "[" else char, False, None
        i += 1
        if char == "`" and src.startswith("``", i):
            is_pre = True
            i, language = _skip_pre_header(src, i + 2)
        offset, part = out.u16, len(out.parts)
        while i < n and (src[i] != end_char or (is_pre and not src.startswith("``", i + 1))):
            out.add(src[i])
            i += 1
        if i >= n:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {byte_offset(src, begin)}")
        length = out.u16 - offset
        url = None
        if char == "[":
            if i + 1 < n and src[i + 1] == "(":
                end = src.find(")", i + 2)
                end = n if end == -1 else end
                url, i = src[i + 2:end], end
            else:
                url = out.since(part)
        if length > 0:
            kind = {"_": "italic", "*": "bold", "[": "text_link", "`": "pre" if is_pre else "code"}[char]
            entities.append(_markdown_entity(kind, offset, length, url if char == "[" else language))
        i += 3 if is_pre else 1
    return out.text, sorted_entities(entities)
