"""A fake Telegram Bot API server for tests, speaking the real wire protocol on 127.0.0.1.

Mimics the Bot API as api.telegram.org serves it (https://core.telegram.org/bots/api, the
`telegram-bot-api` server): `GET|POST {api_url}/bot<token>/<method>` with parameters in the
query string, a JSON body, a form-urlencoded body or a multipart body; every answer is
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": "..."}` with the
same HTTP status, and `parameters.retry_after` on 429. Method names are case-insensitive.
Error descriptions are Telegram's own where known ("Unauthorized", "Not Found",
"Bad Request: message is not modified: ...", "Conflict: terminated by other getUpdates
request; ...", "Forbidden: bot was blocked by the user", ...). A malformed token answers 404
and an unknown well-formed one 401, as Telegram does. `parse_mode` (HTML, MarkdownV2,
Markdown) is parsed the way Telegram's server does, so badly escaped text fails here as it
fails in production; URLs, @mentions and /commands become entities on their own. A bot may
write to a user only once the user has written to it ("Forbidden: bot can't initiate
conversation with a user" before that). Every call is recorded per bot (`FakeBot.calls`).

Methods: getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo, sendMessage,
sendMessageDraft, sendDocument, getFile (and downloads at /file/bot<token>/<path>),
editMessageText, editMessageCaption, editMessageReplyMarkup, deleteMessage, deleteMessages,
answerCallbackQuery, sendChatAction, setMessageReaction, getChat, setMyCommands,
getMyCommands, deleteMyCommands, setMyName/getMyName, setMyDescription/getMyDescription,
setMyShortDescription/getMyShortDescription. A few harmless methods a client may call in
passing (`ACCEPTED_BY_DEFAULT`: menu button, default administrator rights, pins, close,
logOut) answer a fixed result and are recorded; a test may add more with `accept(method,
result)`. Any other method answers 404 "Not Found" and is logged to stderr.

What tests use: `FakeTelegram.add_bot()`, `FakeTelegram.user(id)` (a `FakeUser`, which also
reads as the Telegram User dict), and on a `FakeBot`: `user_sends`, `user_presses`,
`user_sends_document`, `user_blocks`, `open_chat`; `wait_for_message`, `sent_messages`,
`messages`, `deleted`, `calls` (`(method, params)` tuples with `.status` and `.response`),
`calls_to`; faults `flood(seconds)`, `block(chat_id)`, `rate_limit`, `fail_next`, `revoke`.
Messages handed to tests are copies; a document message carries its uploaded bytes as `_bytes`.

Updates wait in one queue per bot: getUpdates long-polls it (`offset` confirms, `limit`,
`timeout`, `allowed_updates`), a newer getUpdates terminates a pending one with 409, and while a
webhook is set the fake POSTs each update to it (header `X-Telegram-Bot-Api-Secret-Token`),
retrying until a 2xx, and getUpdates answers 409.

Known gaps: private chats only (no groups, channels, topics, inline mode, business, payments);
of all media only documents (sendDocument, getFile, downloads); reply keyboards are accepted
but not shown on messages; webhooks must point at loopback (Telegram demands HTTPS; the fake
never leaves the machine) and are delivered one at a time; no rate limits unless a test asks
for one; descriptions for malformed parameter values are approximations; callback queries
never expire; text is not trimmed of surrounding whitespace as Telegram does; MarkdownV2's
expandable block quotes are not parsed.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import itertools
import json
import random
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from telegram.constants import ReactionEmoji

JsonDict = dict[str, Any]
UserRef = Any  # a FakeUser, a Telegram User object (dict) or a user id
MessagePredicate = Callable[[JsonDict], bool]

LOOPBACK = "127.0.0.1"
MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
# Telegram's default when allowed_updates is empty or was never given
NOT_SENT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)
REACTION_EMOJI = frozenset(str(emoji) for emoji in ReactionEmoji)

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
TERMINATED_BY_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
TERMINATED_BY_SET_WEBHOOK = "Conflict: terminated by setWebhook request"
WEBHOOK_IS_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
BLOCKED_BY_USER = "Forbidden: bot was blocked by the user"
CANT_INITIATE = "Forbidden: bot can't initiate conversation with a user"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
# Methods the fake does not model but that clients (grammY in OpenClaw, PTB) may call at start-up
# or in passing; they answer this result and are recorded. Anything else answers 404 and is
# logged to stderr, so a client's new call shows up in the test output.
ACCEPTED_BY_DEFAULT: dict[str, Any] = {
    "setchatmenubutton": True, "getchatmenubutton": {"type": "default"},
    "setmydefaultadministratorrights": True,
    "getmydefaultadministratorrights": dict.fromkeys((
        "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
        "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
        "can_post_stories", "can_edit_stories", "can_delete_stories"), False),
    "pinchatmessage": True, "unpinchatmessage": True, "unpinallchatmessages": True,
    "close": True, "logout": True,
}


# -- errors --------------------------------------------------------------------------------------
class BotApiError(Exception):
    """An answer with ok=false; raised anywhere inside a method, turned into the HTTP reply."""

    def __init__(self, error_code: int, description: str, parameters: JsonDict | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(what: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {what}")


# -- what the fake stores --------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeUser(Mapping[str, Any]):
    """A Telegram user who talks to the fake's bots (always a private chat). It reads as the
    Telegram User object too (`user["id"]`, `dict(user)`, `user == {...}`)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"

    def as_user(self) -> JsonDict:
        user: JsonDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                user[key] = getattr(self, key)
        return user

    def __getitem__(self, key: str) -> Any:
        return self.as_user()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_user())

    def __len__(self) -> int:
        return len(self.as_user())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FakeUser):
            return self.as_user() == other.as_user()
        if isinstance(other, Mapping):
            return self.as_user() == dict(other)
        return NotImplemented

    def as_chat(self) -> JsonDict:
        chat: JsonDict = {"id": self.id, "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key):
                chat[key] = getattr(self, key)
        chat["type"] = "private"
        return chat


class ApiCall(tuple):
    """One request a client made, as the fake understood it: a `(method, params)` pair (so
    `method, params = bot.calls[-1]` and `("getMe", {}) in bot.calls` work) that also carries
    the uploads, the HTTP verb and what the fake answered."""

    method: str  # as the client spelled it
    params: JsonDict  # numbers, booleans and JSON-serialised values already decoded
    files: dict[str, bytes]
    http_method: str
    status: int  # what the fake answered; 0 when the client went away first
    response: JsonDict

    def __new__(cls, method: str, params: JsonDict, files: dict[str, bytes] | None = None,
                http_method: str = "POST") -> ApiCall:
        call = super().__new__(cls, (method, params))
        call.files = files or {}
        call.http_method = http_method
        call.status = 200
        call.response = {}
        return call

    @property  # type: ignore[no-redef]
    def method(self) -> str:
        return self[0]

    @property  # type: ignore[no-redef]
    def params(self) -> JsonDict:
        return self[1]

    def __repr__(self) -> str:
        return f"ApiCall({self[0]!r}, {self[1]!r}, status={self.status})"


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str

    def as_document(self) -> JsonDict:
        document: JsonDict = {}
        if self.file_name:
            document["file_name"] = self.file_name
        if self.mime_type:
            document["mime_type"] = self.mime_type
        document.update(file_id=self.file_id, file_unique_id=self.file_unique_id, file_size=len(self.data))
        return document


@dataclass
class _StoredMessage:
    message: JsonDict
    from_bot: bool
    version: int = 0  # bumped by every edit, so wait_for_message can see edits
    deleted: bool = False
    reactions: list[JsonDict] = field(default_factory=list)


class _Chat:
    """A private chat between one bot and one user."""

    def __init__(self, user: FakeUser) -> None:
        self.user = user
        self.messages: dict[int, _StoredMessage] = {}
        self.actions: list[str] = []
        self.drafts: list[JsonDict] = []  # sendMessageDraft previews, oldest first
        self.started = False  # the user pressed Start (wrote to the bot) at some point
        self.blocked = False
        self.instance = str(random.randint(10**18, 9 * 10**18))  # callback_query.chat_instance
        self._ids = itertools.count(1)

    def next_message_id(self) -> int:
        return next(self._ids)

    def live(self, message_id: int) -> _StoredMessage | None:
        stored = self.messages.get(message_id)
        return None if stored is None or stored.deleted else stored


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _Fault:
    method: str | None  # lower-case; None: any method
    error: BotApiError
    remaining: int


@dataclass
class _Described:
    """A successful result that Telegram answers with a description too (the webhook methods)."""

    result: Any
    description: str


class _Signal:
    """Wakes every waiter at once. Waiters check their condition, then wait again: the event
    is swapped synchronously, so a change between the check and the wait is never missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


def _now() -> int:
    return int(time.time())


def _copy(value: Any) -> Any:
    return copy.deepcopy(value)


def utf16_len(text: str) -> int:
    """Telegram counts offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


# -- parse_mode: Telegram's parsers, error messages included ---------------------------------------
class EntityParseError(ValueError):
    """The text of "Bad Request: can't parse entities: <text>"."""


def parse_formatted(text: str, parse_mode: str) -> tuple[str, list[JsonDict]]:
    mode = parse_mode.lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    if mode == "markdown":
        return _parse_markdown(text)
    raise bad_request("unsupported parse_mode")


class _Output:
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


def _sorted_entities(entities: list[JsonDict]) -> list[JsonDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


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
        return EntityParseError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(src, begin)}')

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
            raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(src, begin)}')
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


def _parse_html(src: str) -> tuple[str, list[JsonDict]]:
    out = _Output()
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
                raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(src, begin)}")
            j = i + 1
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            name = src[i + 1:j].lower()
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(src, begin)}")
            opened = open_tags[-1]
            if name and name != opened["tag"]:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {_byte_offset(src, begin)}, '
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
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        tag = src[i:j].lower()
        if tag not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(src, begin)}')
        attributes, j = _html_attributes(src, j, tag, begin)
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(src, begin)}')
        open_tags.append({"tag": tag, "attributes": attributes, "offset": out.u16, "part": len(out.parts)})
        i = j + 1
    if open_tags:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]["tag"]}"')
    return out.text, _sorted_entities(entities)


def _html_entity(opened: JsonDict, out: _Output, parent: JsonDict | None) -> JsonDict | None:
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


def _parse_markdown_v2(src: str) -> tuple[str, list[JsonDict]]:
    out = _Output()
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
                    raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(src, url_begin)}")
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
        raise EntityParseError(f"Can't find end of {name} entity at byte offset {_byte_offset(src, opened['begin'])}")
    if quote_offset is not None and out.u16 > quote_offset:
        entities.append({"type": "blockquote", "offset": quote_offset, "length": out.u16 - quote_offset})
    return out.text, _sorted_entities(entities)


def _open_markdown_v2_entity(src: str, i: int, out: _Output, open_entities: list[JsonDict]) -> int:
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


def _parse_markdown(src: str) -> tuple[str, list[JsonDict]]:
    """The legacy "Markdown" mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = _Output()
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
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(src, begin)}")
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
    return out.text, _sorted_entities(entities)


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
    return _sorted_entities(entities)


# -- parameters ------------------------------------------------------------------------------------
_JSON_PARAMS = frozenset({
    "reply_markup", "reply_parameters", "allowed_updates", "commands", "scope", "reaction", "entities",
    "caption_entities", "link_preview_options", "message_ids", "media",
})
_INT_PARAMS = frozenset({
    "chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id", "message_thread_id",
    "cache_time", "max_connections", "user_id", "from_chat_id", "draft_id",
})
_BOOL_PARAMS = frozenset({
    "disable_notification", "protect_content", "show_alert", "drop_pending_updates", "is_big",
    "disable_web_page_preview", "allow_sending_without_reply", "disable_content_type_detection",
})
_INTEGER = re.compile(r"-?\d+")


@dataclass
class _Upload:
    filename: str | None
    content_type: str | None
    data: bytes


def _normalise(values: JsonDict) -> JsonDict:
    """Form fields arrive as strings; decode them the way Telegram reads each parameter."""
    normalised: JsonDict = {}
    for key, value in values.items():
        if isinstance(value, str):
            if key in _JSON_PARAMS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # left as a string: the method answers "can't parse ..."
            elif key in _INT_PARAMS and _INTEGER.fullmatch(value.strip()):
                value = int(value)
            elif key in _BOOL_PARAMS and value.lower() in ("true", "false", "1", "0"):
                value = value.lower() in ("true", "1")
        normalised[key] = value
    return normalised


async def _read_params(request: web.Request) -> tuple[JsonDict, dict[str, _Upload]]:
    values: JsonDict = dict(request.query)
    files: dict[str, _Upload] = {}
    if request.method != "POST" or not request.can_read_body:
        return values, files
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("JSON object expected")
        values.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = _Upload(value.filename, value.content_type, value.file.read())
            else:
                values[key] = value if isinstance(value, str) else bytes(value).decode()
    return values, files


class _Params:
    def __init__(self, values: JsonDict, files: dict[str, _Upload]) -> None:
        self.values = values
        self.files = files

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str, *, missing: str | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if missing:
                raise bad_request(missing)
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad_request(f"invalid {name} specified")
        return int(value)

    def flag(self, name: str) -> bool:
        return self.values.get(name) is True

    def json(self, name: str, *, what: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            raise bad_request(f"can't parse {what} JSON object")
        return value


# -- the bot ---------------------------------------------------------------------------------------
_API_METHODS: dict[str, str] = {}  # lower-case method name -> FakeBot attribute


def _api(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        _API_METHODS[name.lower()] = handler.__name__
        return handler

    return register


class FakeBot:
    """One bot of the fake Bot API: its server-side state, what tests make users do (user_*),
    what tests read back, and the faults they ask for. Create it with FakeTelegram.add_bot."""

    def __init__(self, telegram: FakeTelegram, token: str, bot_id: int, username: str, first_name: str) -> None:
        self.telegram = telegram
        self.token = token
        self.id = bot_id
        self.username = username
        self.first_name = first_name
        self.calls: list[ApiCall] = []
        self.callback_answers: dict[str, JsonDict] = {}  # callback query id -> answerCallbackQuery params
        self.files: dict[str, StoredFile] = {}
        self.profile: dict[tuple[str, str], str] = {}  # (name|description|short_description, language) -> text
        self.revoked = False
        self._chats: dict[int, _Chat] = {}
        self._updates: list[JsonDict] = []  # not yet confirmed, oldest first
        self._next_update_id = random.randint(10**8, 9 * 10**8)
        self._allowed_updates: list[str] = []
        self._changed = _Signal()
        self._poll_turn: object | None = None
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._faults: list[_Fault] = []
        self._accepted: dict[str, Any] = {}
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._open_queries: set[str] = set()
        self._returned: set[tuple[int, int, int]] = set()

    def __repr__(self) -> str:
        return f"<FakeBot @{self.username} id={self.id}>"

    def as_user(self) -> JsonDict:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    # -- what users do (tests call these) ------------------------------------------------------
    async def user_sends(self, user: UserRef, text: str, *, reply_to: int | None = None) -> JsonDict:
        """The user writes `text` in their private chat with the bot; returns their message."""
        chat = await self._chat_started_by(self.telegram._resolve_user(user))
        message = self._user_message(chat, reply_to)
        message["text"] = text
        entities = detect_entities(text)
        if entities:
            message["entities"] = entities
        return self._receive(chat, message)

    async def user_sends_document(
        self, user: UserRef, data: bytes, file_name: str, *,
        mime_type: str = "application/octet-stream", caption: str | None = None,
    ) -> JsonDict:
        chat = await self._chat_started_by(self.telegram._resolve_user(user))
        message = self._user_message(chat, None)
        message["document"] = self._store_file(_Upload(file_name, mime_type, data), "documents").as_document()
        if caption:
            message["caption"] = caption
        return self._receive(chat, message)

    async def user_presses(self, user: UserRef, message: JsonDict | int, callback_data: str) -> JsonDict:
        """The user taps the inline button carrying `callback_data` on a message the bot sent;
        returns the CallbackQuery (its "id" keys `callback_answers`)."""
        fake_user = self.telegram._resolve_user(user)
        chat = self._chats.get(fake_user.id)
        message_id = message["message_id"] if isinstance(message, dict) else int(message)
        stored = chat.live(message_id) if chat else None
        if stored is None:
            raise LookupError(f"{fake_user.id} has no message {message_id} from {self!r} to press")
        buttons = [b for row in stored.message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if not any(b.get("callback_data") == callback_data for b in buttons):
            offered = [b.get("callback_data") for b in buttons]
            raise LookupError(f"message {message_id} has no button with callback_data={callback_data!r}: {offered}")
        query_id = str(random.randint(10**17, 9 * 10**18))
        self._open_queries.add(query_id)
        query = {"id": query_id, "from": fake_user.as_user(), "message": _copy(stored.message),
                 "chat_instance": chat.instance, "data": callback_data}
        self._enqueue("callback_query", query)
        await asyncio.sleep(0)
        return _copy(query)

    async def user_blocks(self, user: UserRef) -> None:
        """The user blocks the bot: sending to them answers 403 until they write again."""
        fake_user = self.telegram._resolve_user(user)
        chat = await self._chat_started_by(fake_user)
        chat.blocked = True
        self._enqueue("my_chat_member", self._membership_change(fake_user, "member", "kicked"))

    def block(self, chat_id: int) -> None:
        """Mark the chat blocked at once (no my_chat_member update, unlike `user_blocks`): every
        send to it answers 403 "Forbidden: bot was blocked by the user" until `unblock` or until
        the user writes again."""
        fake_user = self.telegram._resolve_user(chat_id)
        chat = self._chats.setdefault(fake_user.id, _Chat(fake_user))
        chat.started = chat.blocked = True

    def unblock(self, chat_id: int) -> None:
        chat = self._chats.get(chat_id)
        if chat:
            chat.blocked = False

    def open_chat(self, user: UserRef) -> None:
        """As if the user had pressed Start long ago: the bot may write to them, no update is sent."""
        fake_user = self.telegram._resolve_user(user)
        self._chats.setdefault(fake_user.id, _Chat(fake_user)).started = True

    # -- what tests read back --------------------------------------------------------------------
    async def wait_for_message(
        self, chat_id: int, predicate: MessagePredicate | None = None, timeout: float = 10.0,
    ) -> JsonDict:
        """The first message the bot has in the chat (sent or edited into that state) that matches
        and that no earlier call returned; waits for one up to `timeout` seconds.

        Each call returns a state no earlier call returned: a new message, or a new edit of one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self._first_unreturned(chat_id, predicate)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                texts = [m.get("text", m.get("caption")) for m in self.sent_messages(chat_id)]
                raise TimeoutError(f"{self!r} sent no matching message to {chat_id} in {timeout}s; it has: {texts}")
            await self._changed.wait(remaining)

    def sent_messages(self, chat_id: int) -> list[JsonDict]:
        """What the bot's messages in the chat look like now: edits applied, deleted ones gone."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [self._for_test(s.message) for _, s in sorted(chat.messages.items()) if s.from_bot and not s.deleted]

    def messages(self, chat_id: int) -> list[JsonDict]:
        """Both sides of the conversation, as it looks now."""
        chat = self._chats.get(chat_id)
        return [self._for_test(s.message) for _, s in sorted(chat.messages.items()) if not s.deleted] if chat else []

    def deleted(self, chat_id: int, message_id: int) -> bool:
        chat = self._chats.get(chat_id)
        stored = chat.messages.get(message_id) if chat else None
        return bool(stored and stored.deleted)

    def chat_actions(self, chat_id: int) -> list[str]:
        chat = self._chats.get(chat_id)
        return list(chat.actions) if chat else []

    def drafts(self, chat_id: int) -> list[JsonDict]:
        """The sendMessageDraft previews streamed to the chat, oldest first."""
        chat = self._chats.get(chat_id)
        return _copy(chat.drafts) if chat else []

    def reactions(self, chat_id: int, message_id: int) -> list[JsonDict]:
        chat = self._chats.get(chat_id)
        stored = chat.messages.get(message_id) if chat else None
        return _copy(stored.reactions) if stored else []

    def commands(self, scope: JsonDict | None = None, language_code: str = "") -> list[JsonDict]:
        return _copy(self._commands.get((self._scope_key(scope), language_code), []))

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    @property
    def webhook_url(self) -> str:
        return self._webhook.url if self._webhook else ""

    @property
    def pending_updates(self) -> list[JsonDict]:
        return _copy(self._updates)

    # -- faults tests ask for --------------------------------------------------------------------
    def fail_next(
        self, method: str | None, error_code: int, description: str, *,
        parameters: JsonDict | None = None, times: int = 1,
    ) -> None:
        """The next `times` calls of `method` (any method when None) answer this error."""
        error = BotApiError(error_code, description, parameters)
        self._faults.append(_Fault(method.lower() if method else None, error, times))

    def rate_limit(self, method: str | None = "sendMessage", retry_after: int = 5, times: int = 1) -> None:
        """Flood control, exactly as Telegram answers it."""
        self.fail_next(method, 429, f"Too Many Requests: retry after {retry_after}",
                       parameters={"retry_after": retry_after}, times=times)

    def flood(self, seconds: int, method: str | None = None) -> None:
        """The next call (of `method`, or of any method) answers 429 "Too Many Requests: retry
        after <seconds>" with parameters.retry_after, as Telegram's flood control does."""
        self.rate_limit(method, retry_after=seconds)

    def document_bytes(self, message: JsonDict) -> bytes:
        """The uploaded bytes of a document message (also in test-facing copies as `_bytes`)."""
        return self.files[message["document"]["file_id"]].data

    def accept(self, method: str, result: Any = True) -> None:
        """Answer a method the fake does not implement: `result`, or `result(params)` if callable."""
        self._accepted[method.lower()] = result

    def revoke(self) -> None:
        """The token stops working (as after /revoke at @BotFather): every call answers 401."""
        self.revoked = True
        self._changed.notify()

    # -- serving one call --------------------------------------------------------------------------
    async def call(self, method: str, values: JsonDict, uploads: dict[str, _Upload], http_method: str) -> ApiCall:
        params = _normalise(values)
        record = ApiCall(method, params, {k: u.data for k, u in uploads.items()}, http_method)
        self.calls.append(record)
        try:
            result = await self._run(method, _Params(params, uploads))
        except asyncio.CancelledError:
            record.status = 0  # the client went away before the answer (a long poll, usually)
            raise
        except BotApiError as error:
            record.status, record.response = error.error_code, error.payload()
        else:
            record.response = {"ok": True, "result": result}
            if isinstance(result, _Described):
                record.response = {"ok": True, "result": result.result, "description": result.description}
        return record

    async def _run(self, method: str, params: _Params) -> Any:
        name = method.lower()
        handler = getattr(self, _API_METHODS[name]) if name in _API_METHODS else None
        accepted = self._accepted.get(name, self.telegram.accepted.get(name))
        if handler is None and accepted is None:
            accepted = ACCEPTED_BY_DEFAULT.get(name)
        if handler is None and accepted is None:
            print(f"[fake Telegram] unknown Bot API method {method!r} called on @{self.username}: "
                  "answered 404 Not Found", file=sys.stderr, flush=True)
            raise BotApiError(404, NOT_FOUND)
        for fault in self._faults:
            if fault.method in (None, name) and fault.remaining > 0:
                fault.remaining -= 1
                raise fault.error
        if handler is None:
            return accepted(params.values) if callable(accepted) else _copy(accepted)
        return await handler(params)

    # -- updates -------------------------------------------------------------------------------------
    def _wants(self, kind: str) -> bool:
        if not self._allowed_updates:
            return kind not in NOT_SENT_BY_DEFAULT
        return kind in self._allowed_updates

    def _enqueue(self, kind: str, payload: JsonDict) -> None:
        if not self._wants(kind):
            return
        self._updates.append({"update_id": self._next_update_id, kind: _copy(payload)})
        self._next_update_id += 1
        self._changed.notify()

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]  # only the last -offset are kept

    @_api("getUpdates")
    async def _get_updates(self, p: _Params) -> list[JsonDict]:
        if self._webhook:
            raise BotApiError(409, WEBHOOK_IS_ACTIVE)
        offset = p.integer("offset") or 0
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = min(max(p.integer("timeout") or 0, 0), self.telegram.max_long_poll_s)
        allowed = p.json("allowed_updates", what="allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        self._confirm(offset)
        turn = self._poll_turn = object()
        self._changed.notify()  # a pending poll sees it lost its turn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._poll_turn is not turn:
                raise BotApiError(409, TERMINATED_BY_OTHER_POLL)
            if self._webhook:
                raise BotApiError(409, TERMINATED_BY_SET_WEBHOOK)
            if self.revoked:
                raise BotApiError(401, UNAUTHORIZED)
            if self._updates or self.telegram.closing:
                return _copy(self._updates[:limit])
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self._changed.wait(remaining)

    @_api("setWebhook")
    async def _set_webhook(self, p: _Params) -> _Described:
        url = p.text("url") or ""
        if not url:
            return await self._drop_webhook(p.flag("drop_pending_updates"))
        _require_loopback(url)
        secret = p.text("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad_request("secret token contains unallowed characters")
        allowed = p.json("allowed_updates", what="allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if p.flag("drop_pending_updates"):
            self._updates.clear()
        already = self._webhook is not None and self._webhook.url == url
        self._webhook = _Webhook(url, secret, p.integer("max_connections") or 40, p.text("ip_address"))
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._deliver_to_webhook())
        self._changed.notify()
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    @_api("deleteWebhook")
    async def _delete_webhook(self, p: _Params) -> _Described:
        return await self._drop_webhook(p.flag("drop_pending_updates"))

    async def _drop_webhook(self, drop_pending: bool) -> _Described:
        had_one, self._webhook = self._webhook is not None, None
        await self._stop_webhook_delivery()
        if drop_pending:
            self._updates.clear()
        self._changed.notify()
        return _Described(True, "Webhook was deleted" if had_one else "Webhook is already deleted")

    @_api("getWebhookInfo")
    async def _get_webhook_info(self, p: _Params) -> JsonDict:
        info: JsonDict = {"url": self.webhook_url, "has_custom_certificate": False,
                          "pending_update_count": len(self._updates)}
        if self._webhook:
            info["max_connections"] = self._webhook.max_connections
            info["ip_address"] = self._webhook.ip_address or LOOPBACK
            if self._webhook.last_error_date:
                info["last_error_date"] = self._webhook.last_error_date
                info["last_error_message"] = self._webhook.last_error_message
        if self._allowed_updates:
            info["allowed_updates"] = list(self._allowed_updates)
        return info

    async def _deliver_to_webhook(self) -> None:
        """Telegram's webhook sender: one update at a time, in order, retried until a 2xx."""
        while self._webhook is not None and not self.telegram.closing:
            hook = self._webhook
            if not self._updates:
                await self._changed.wait(1.0)
                continue
            update = self._updates[0]
            error = await self._post_update(hook, update)
            if error is None:
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                self._changed.notify()
            else:
                hook.last_error_date, hook.last_error_message = _now(), error
                await asyncio.sleep(self.telegram.webhook_retry_s)

    async def _post_update(self, hook: _Webhook, update: JsonDict) -> str | None:
        _require_loopback(hook.url)  # checked at setWebhook too; never send anywhere else
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self.telegram.http.post(
                hook.url, data=json.dumps(update), headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                body = await response.read()
                if not 200 <= response.status < 300:
                    return f"Wrong response from the webhook: {response.status} {response.reason}"
                await self._answer_in_webhook_reply(response.content_type, body)
                return None
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"

    async def _answer_in_webhook_reply(self, content_type: str, body: bytes) -> None:
        """A webhook may answer with {"method": ..., params}: Telegram then makes that call."""
        if content_type != "application/json":
            return
        try:
            reply = json.loads(body)
        except ValueError:
            return
        if isinstance(reply, dict) and isinstance(reply.get("method"), str):
            values = {k: v for k, v in reply.items() if k != "method"}
            await self.call(reply["method"], values, {}, "WEBHOOK-REPLY")

    async def _stop_webhook_delivery(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task and not task.done() and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- chats and messages --------------------------------------------------------------------------
    async def _chat_started_by(self, user: FakeUser) -> _Chat:
        chat = self._chats.setdefault(user.id, _Chat(user))
        chat.started = True
        if chat.blocked:  # writing again unblocks, as pressing "Restart" does
            chat.blocked = False
            self._enqueue("my_chat_member", self._membership_change(user, "kicked", "member"))
        await asyncio.sleep(0)
        return chat

    def _membership_change(self, user: FakeUser, old: str, new: str) -> JsonDict:
        def member(status: str) -> JsonDict:
            state: JsonDict = {"user": self.as_user(), "status": status}
            if status == "kicked":
                state["until_date"] = 0
            return state

        return {"chat": user.as_chat(), "from": user.as_user(), "date": _now(),
                "old_chat_member": member(old), "new_chat_member": member(new)}

    def _user_message(self, chat: _Chat, reply_to: int | None) -> JsonDict:
        message: JsonDict = {"message_id": chat.next_message_id(), "from": chat.user.as_user(),
                             "chat": chat.user.as_chat(), "date": _now()}
        replied = chat.live(reply_to) if reply_to else None
        if replied:
            message["reply_to_message"] = _without_reply(replied.message)
        return message

    def _receive(self, chat: _Chat, message: JsonDict) -> JsonDict:
        chat.messages[message["message_id"]] = _StoredMessage(message, from_bot=False)
        self._enqueue("message", message)
        return self._for_test(message)

    def _for_test(self, message: JsonDict) -> JsonDict:
        """A copy for tests: a document message also carries its uploaded bytes as `_bytes`."""
        copied = _copy(message)
        stored = self.files.get((copied.get("document") or {}).get("file_id", ""))
        if stored is not None:
            copied["_bytes"] = stored.data
        return copied

    def _chat(self, p: _Params, *, writing: bool = True) -> _Chat:
        value = p.values.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            raise bad_request("chat not found")  # users cannot be addressed by @username
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request("chat not found")
        chat = self._chats.get(value)
        if chat is None or not chat.started:
            if value in self.telegram.users and writing:
                raise BotApiError(403, CANT_INITIATE)
            raise bad_request("chat not found")
        if writing and chat.blocked:
            raise BotApiError(403, BLOCKED_BY_USER)
        return chat

    def _text_and_entities(
        self, p: _Params, text_key: str, entities_key: str, *, required: bool,
    ) -> tuple[str, list[JsonDict]]:
        raw = p.text(text_key) or ""
        parse_mode = p.text("parse_mode")
        if parse_mode:
            try:
                text, entities = parse_formatted(raw, parse_mode)
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        else:
            text = raw
            given = p.json(entities_key, what="entities")
            entities = [dict(e) for e in given] if isinstance(given, list) else []
        if required and not text.strip():
            raise bad_request("message text is empty")
        return text, detect_entities(text, entities) if text else []

    def _reply_target(self, chat: _Chat, p: _Params) -> JsonDict | None:
        parameters = p.json("reply_parameters", what="reply parameters")
        if isinstance(parameters, dict):
            message_id = parameters.get("message_id")
            allow_missing = bool(parameters.get("allow_sending_without_reply"))
        else:
            message_id, allow_missing = p.integer("reply_to_message_id"), p.flag("allow_sending_without_reply")
        if not message_id:
            return None
        if not isinstance(message_id, int) and not _INTEGER.fullmatch(str(message_id)):
            raise bad_request("invalid reply_parameters specified")
        replied = chat.live(int(message_id))
        if replied is None:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return _without_reply(replied.message)

    def _inline_keyboard(self, p: _Params) -> JsonDict | None:
        markup = p.json("reply_markup", what="reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None  # reply keyboards live in the client, not on the message
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard button: InlineKeyboardMarkup must be an Array of Arrays")
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: Field \"text\" must be of type String")
            if not any(action in button for action in BUTTON_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not re.match(r"(https?|tg)://\S+$", str(button["url"])):
                raise bad_request("BUTTON_URL_INVALID")
        rows = [row for row in rows if row]
        return {"inline_keyboard": _copy(rows)} if rows else None

    def _new_bot_message(self, chat: _Chat, content: JsonDict, reply_to: JsonDict | None,
                         keyboard: JsonDict | None) -> JsonDict:
        message: JsonDict = {"message_id": chat.next_message_id(), "from": self.as_user(),
                             "chat": chat.user.as_chat(), "date": _now()}
        if reply_to:
            message["reply_to_message"] = reply_to
        message.update({k: v for k, v in content.items() if v not in (None, [], "")})
        if keyboard:
            message["reply_markup"] = keyboard
        chat.messages[message["message_id"]] = _StoredMessage(message, from_bot=True)
        self._changed.notify()
        return _copy(message)

    def _editable(self, chat: _Chat, p: _Params, not_found: str) -> _StoredMessage:
        if p.values.get("inline_message_id"):
            raise bad_request("the fake Bot API does not support inline messages")
        message_id = p.integer("message_id", missing="message identifier is not specified")
        stored = chat.live(message_id or 0)
        if stored is None:
            raise bad_request(not_found)
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        return stored

    def _apply_edit(self, stored: _StoredMessage, content: JsonDict, keyboard: JsonDict | None) -> JsonDict:
        edited = dict(stored.message)
        for key, value in content.items():
            if value in (None, [], ""):
                edited.pop(key, None)
            else:
                edited[key] = value
        if keyboard:
            edited["reply_markup"] = keyboard
        else:
            edited.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
        if _visible_content(edited) == _visible_content(stored.message):
            raise bad_request(NOT_MODIFIED)
        edited["edit_date"] = _now()
        stored.message = edited
        stored.version += 1
        self._changed.notify()
        return _copy(edited)

    def _store_file(self, upload: _Upload, folder: str) -> StoredFile:
        number = len(self.files)
        suffix = "." + upload.filename.rsplit(".", 1)[1] if upload.filename and "." in upload.filename else ""
        stored = StoredFile(
            file_id="BQAC" + _random_text(60), file_unique_id="AgAD" + _random_text(12), data=upload.data,
            file_name=upload.filename, mime_type=upload.content_type, file_path=f"{folder}/file_{number}{suffix}",
        )
        self.files[stored.file_id] = stored
        return stored

    def _first_unreturned(self, chat_id: int, predicate: MessagePredicate | None) -> JsonDict | None:
        chat = self._chats.get(chat_id)
        for message_id, stored in sorted(chat.messages.items()) if chat else ():
            key = (chat_id, message_id, stored.version)
            if not stored.from_bot or stored.deleted or key in self._returned:
                continue
            candidate = self._for_test(stored.message)
            if predicate is None or predicate(candidate):
                self._returned.add(key)
                return candidate
        return None

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    # -- methods ---------------------------------------------------------------------------------------
    @_api("getMe")
    async def _get_me(self, p: _Params) -> JsonDict:
        return {**self.as_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False,
                "has_topics_enabled": False, "allows_users_to_create_topics": False}

    @_api("sendMessage")
    async def _send_message(self, p: _Params) -> JsonDict:
        chat = self._chat(p)
        text, entities = self._text_and_entities(p, "text", "entities", required=True)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise bad_request("message is too long")
        reply_to = self._reply_target(chat, p)
        keyboard = self._inline_keyboard(p)
        return self._new_bot_message(chat, {"text": text, "entities": entities}, reply_to, keyboard)

    @_api("sendMessageDraft")
    async def _send_message_draft(self, p: _Params) -> bool:
        """A streamed preview of a message being generated; ephemeral, it is never a message."""
        chat = self._chat(p)
        draft_id = p.integer("draft_id", missing="draft_id is empty")
        if not draft_id:
            raise bad_request("draft_id must be non-zero")
        text, entities = self._text_and_entities(p, "text", "entities", required=False)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise bad_request("message is too long")
        chat.drafts.append({"draft_id": draft_id, "text": text, "entities": entities})
        return True

    @_api("sendDocument")
    async def _send_document(self, p: _Params) -> JsonDict:
        chat = self._chat(p)
        document = self._document_from(p)
        caption, caption_entities = self._text_and_entities(p, "caption", "caption_entities", required=False)
        if utf16_len(caption) > MAX_CAPTION_UTF16:
            raise bad_request("message caption is too long")
        reply_to = self._reply_target(chat, p)
        keyboard = self._inline_keyboard(p)
        content = {"document": document.as_document(), "caption": caption, "caption_entities": caption_entities}
        return self._new_bot_message(chat, content, reply_to, keyboard)

    def _document_from(self, p: _Params) -> StoredFile:
        upload = p.files.get("document")
        reference = p.text("document") if upload is None else None
        if reference and reference.startswith("attach://"):
            upload = p.files.get(reference.removeprefix("attach://"))
            reference = None
        if upload is not None:
            return self._store_file(upload, "documents")
        if not reference:
            raise bad_request("there is no document in the request")
        if reference in self.files:
            return self.files[reference]
        if re.match(r"https?://", reference):
            raise bad_request("failed to get HTTP URL content")  # the fake never fetches URLs
        raise bad_request("wrong file identifier/HTTP URL specified")

    @_api("getFile")
    async def _get_file(self, p: _Params) -> JsonDict:
        stored = self.files.get(p.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    @_api("editMessageText")
    async def _edit_message_text(self, p: _Params) -> JsonDict:
        chat = self._chat(p)
        stored = self._editable(chat, p, "message to edit not found")
        if "text" not in stored.message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._text_and_entities(p, "text", "entities", required=True)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise bad_request("message is too long")
        return self._apply_edit(stored, {"text": text, "entities": entities}, self._inline_keyboard(p))

    @_api("editMessageCaption")
    async def _edit_message_caption(self, p: _Params) -> JsonDict:
        chat = self._chat(p)
        stored = self._editable(chat, p, "message to edit not found")
        if "text" in stored.message:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._text_and_entities(p, "caption", "caption_entities", required=False)
        content = {"caption": caption, "caption_entities": entities}
        return self._apply_edit(stored, content, self._inline_keyboard(p))

    @_api("editMessageReplyMarkup")
    async def _edit_message_reply_markup(self, p: _Params) -> JsonDict:
        chat = self._chat(p)
        stored = self._editable(chat, p, "message to edit not found")
        return self._apply_edit(stored, {}, self._inline_keyboard(p))

    @_api("deleteMessage")
    async def _delete_message(self, p: _Params) -> bool:
        chat = self._chat(p, writing=False)
        message_id = p.integer("message_id", missing="message identifier is not specified")
        stored = chat.live(message_id or 0)
        if stored is None:
            raise bad_request("message to delete not found")
        stored.deleted = True
        self._changed.notify()
        return True

    @_api("deleteMessages")
    async def _delete_messages(self, p: _Params) -> bool:
        chat = self._chat(p, writing=False)
        ids = p.json("message_ids", what="message identifiers")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100 or not all(isinstance(i, int) for i in ids):
            raise bad_request("message_ids must be a non-empty list of at most 100 identifiers")
        for message_id in ids:
            stored = chat.live(int(message_id))
            if stored:  # missing ones are skipped, as Telegram does
                stored.deleted = True
        self._changed.notify()
        return True

    @_api("answerCallbackQuery")
    async def _answer_callback_query(self, p: _Params) -> bool:
        query_id = p.text("callback_query_id") or ""
        if query_id not in self._open_queries:
            raise bad_request(QUERY_TOO_OLD)
        if len(p.text("text") or "") > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = dict(p.values)
        return True

    @_api("sendChatAction")
    async def _send_chat_action(self, p: _Params) -> bool:
        chat = self._chat(p)
        action = p.text("action") or ""
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.actions.append(action)
        return True

    @_api("setMessageReaction")
    async def _set_message_reaction(self, p: _Params) -> bool:
        chat = self._chat(p)
        message_id = p.integer("message_id", missing="message identifier is not specified")
        stored = chat.live(message_id or 0)
        if stored is None:
            raise bad_request("message to react not found")
        reaction = p.json("reaction", what="reaction types") or []
        if not isinstance(reaction, list):
            raise bad_request("can't parse reaction types JSON object")
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji" or item.get("emoji") not in REACTION_EMOJI:
                raise bad_request("REACTION_INVALID")
        if len(reaction) > 1:
            raise bad_request("REACTIONS_TOO_MANY")  # bots may set one reaction per message
        stored.reactions = _copy(reaction)
        return True

    def _profile(self, p: _Params, field_name: str, limit: int, what: str) -> bool:
        value = p.text(field_name) or ""
        if len(value) > limit:
            raise bad_request(f"{what} is too long")
        key = (field_name, p.text("language_code") or "")
        if value:
            self.profile[key] = value
        else:
            self.profile.pop(key, None)
        return True

    def _profile_value(self, p: _Params, field_name: str, default: str) -> JsonDict:
        language = p.text("language_code") or ""
        value = self.profile.get((field_name, language), self.profile.get((field_name, ""), default))
        return {field_name: value}

    @_api("setMyName")
    async def _set_my_name(self, p: _Params) -> bool:
        return self._profile(p, "name", 64, "bot name")

    @_api("getMyName")
    async def _get_my_name(self, p: _Params) -> JsonDict:
        return self._profile_value(p, "name", self.first_name)

    @_api("setMyDescription")
    async def _set_my_description(self, p: _Params) -> bool:
        return self._profile(p, "description", 512, "bot description")

    @_api("getMyDescription")
    async def _get_my_description(self, p: _Params) -> JsonDict:
        return self._profile_value(p, "description", "")

    @_api("setMyShortDescription")
    async def _set_my_short_description(self, p: _Params) -> bool:
        return self._profile(p, "short_description", 120, "bot short description")

    @_api("getMyShortDescription")
    async def _get_my_short_description(self, p: _Params) -> JsonDict:
        return self._profile_value(p, "short_description", "")

    @_api("getChat")
    async def _get_chat(self, p: _Params) -> JsonDict:
        chat = self._chat(p, writing=False)
        no_gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"), False)
        return {**chat.user.as_chat(), "accent_color_id": chat.user.id % 7, "max_reaction_count": 11,
                "accepted_gift_types": no_gifts}

    @_api("setMyCommands")
    async def _set_my_commands(self, p: _Params) -> bool:
        commands = p.json("commands", what="commands") or []  # no commands: an empty list, as Telegram
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            for key in ("command", "description"):
                if key not in command:
                    raise bad_request(f'can\'t parse BotCommand: Can\'t find field "{key}"')
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command["command"])):
                raise bad_request("BOT_COMMAND_INVALID")
            description = str(command["description"])
            if not description.strip():
                raise bad_request("command description must be non-empty")
            if len(description) > 256:
                raise bad_request("command description is too long")
        key = (self._scope_key(p.json("scope", what="bot command scope")), p.text("language_code") or "")
        self._commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    @_api("getMyCommands")
    async def _get_my_commands(self, p: _Params) -> list[JsonDict]:
        return self.commands(p.json("scope", what="bot command scope"), p.text("language_code") or "")

    @_api("deleteMyCommands")
    async def _delete_my_commands(self, p: _Params) -> bool:
        key = (self._scope_key(p.json("scope", what="bot command scope")), p.text("language_code") or "")
        self._commands.pop(key, None)
        return True


def _without_reply(message: JsonDict) -> JsonDict:
    """A replied-to message as Telegram embeds it: without its own reply_to_message."""
    shallow = _copy(message)
    shallow.pop("reply_to_message", None)
    return shallow


def _visible_content(message: JsonDict) -> tuple[Any, ...]:
    return (message.get("text"), message.get("entities") or [], message.get("caption"),
            message.get("caption_entities") or [], message.get("reply_markup"))


def _random_text(length: int, alphabet: str = string.ascii_letters + string.digits + "_-") -> str:
    return "".join(random.choices(alphabet, k=length))


def _require_loopback(url: str) -> None:
    """Webhooks may only point at this machine: tests must never send traffic anywhere else."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise bad_request("bad webhook: Wrong HTTP URL specified")
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise bad_request(f"bad webhook: the fake Bot API only delivers to loopback addresses, not {host!r}")


# -- the server --------------------------------------------------------------------------------------
_API_PATH = re.compile(r"/bot([^/]*)/([^/]*)")
_FILE_PATH = re.compile(r"/file/bot([^/]*)/(.+)")
_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")


class FakeTelegram:
    """The fake Bot API server; `async with FakeTelegram() as fake:` starts it on a free port.

    `fake.api_url` is the Bot API root (http://127.0.0.1:PORT): python-telegram-bot takes
    `base_url=f"{api_url}/bot"`, OpenClaw `channels.telegram.apiRoot=api_url`."""

    def __init__(self, *, webhook_retry_s: float = 0.2, max_long_poll_s: int = 50) -> None:
        self.webhook_retry_s = webhook_retry_s
        self.max_long_poll_s = max_long_poll_s
        self.users: dict[int, FakeUser] = {}
        self.accepted: dict[str, Any] = {}  # methods every bot answers without implementing them
        self.closing = False
        self._bots: dict[str, FakeBot] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._port: int | None = None

    @property
    def api_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started: use `async with FakeTelegram() as fake`")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def bots(self) -> list[FakeBot]:
        return list(self._bots.values())

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)  # Telegram takes uploads up to 50 MB
        app.router.add_route("*", "/{tail:.*}", self._serve)
        # no access log: request paths carry bot tokens
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self.closing = True
        for bot in self._bots.values():
            bot._changed.notify()  # pending long polls answer at once
            await bot._stop_webhook_delivery()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_bot(self, token: str | None = None, username: str | None = None,
                first_name: str | None = None) -> FakeBot:
        """A new bot; without a token, one shaped like BotFather's (`<id>:AA<33 more>`)."""
        if token is None:
            bot_id = random.randint(7 * 10**9, 8 * 10**9 - 1)
            token = f"{bot_id}:AA{_random_text(33)}"
        elif not _TOKEN_SHAPE.fullmatch(token):
            raise ValueError("a bot token looks like 123456789:AA... (digits, a colon, letters)")
        if token in self._bots:
            raise ValueError("that token already belongs to a bot of this fake")
        bot_id = int(token.split(":", 1)[0])
        number = len(self._bots) + 1
        username = username or f"fake{number}_bot"
        bot = FakeBot(self, token, bot_id, username, first_name or f"Fake Bot {number}")
        self._bots[token] = bot
        return bot

    def user(self, user_id: int | None = None, first_name: str = "User", username: str | None = None, *,
             last_name: str | None = None, language_code: str | None = "en") -> FakeUser:
        """A user by id; the first call for an id creates it, later calls return the same user."""
        if user_id is not None and user_id in self.users:
            return self.users[user_id]
        while user_id is None or user_id in self.users:
            user_id = random.randint(10**8, 7 * 10**9)
        user = FakeUser(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        return user

    def accept(self, method: str, result: Any = True) -> None:
        """Every bot answers `method` (unimplemented here) with `result`, recording the call."""
        self.accepted[method.lower()] = result

    def _resolve_user(self, user: UserRef) -> FakeUser:
        if isinstance(user, FakeUser):
            self.users.setdefault(user.id, user)
            return user
        if isinstance(user, Mapping):  # a Telegram User object
            if user.get("is_bot"):
                raise ValueError("bots do not write to bots in the fake Bot API")
            return self.user(int(user["id"]), user.get("first_name") or "User", user.get("username"),
                             last_name=user.get("last_name"), language_code=user.get("language_code"))
        return self.user(int(user))

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        api = _API_PATH.fullmatch(request.path)
        if api is None:
            downloaded = _FILE_PATH.fullmatch(request.path)
            if downloaded and request.method == "GET":
                return self._download(*downloaded.groups())
            return _error_response(BotApiError(404, NOT_FOUND))
        token, method = api.groups()
        if not _TOKEN_SHAPE.fullmatch(token):
            return _error_response(BotApiError(404, NOT_FOUND))  # malformed tokens: 404, as Telegram
        bot = self._bots.get(token)
        if bot is None or bot.revoked:
            return _error_response(BotApiError(401, UNAUTHORIZED))
        try:
            values, uploads = await _read_params(request)
        except BotApiError as error:
            return _error_response(error)
        record = await bot.call(method, values, uploads, request.method)
        return web.json_response(record.response, status=record.status)

    def _download(self, token: str, file_path: str) -> web.Response:
        bot = self._bots.get(token)
        stored = next((f for f in bot.files.values() if f.file_path == file_path), None) if bot else None
        if stored is None or (bot and bot.revoked):
            return _error_response(BotApiError(404, NOT_FOUND))
        return web.Response(body=stored.data, content_type="application/octet-stream")


def _error_response(error: BotApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.error_code)
