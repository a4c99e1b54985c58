"""What the fake keeps, as plain records: users, recorded calls, files, messages, private chats,
the webhook a bot set and the faults a test asked for."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram.protocol import BotApiError, JsonDict


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
    at: float  # time.monotonic() when the fake received it

    def __new__(cls, method: str, params: JsonDict, files: dict[str, bytes] | None = None,
                http_method: str = "POST") -> ApiCall:
        call = super().__new__(cls, (method, params))
        call.files = files or {}
        call.http_method = http_method
        call.at = time.monotonic()
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
class StoredMessage:
    message: JsonDict
    from_bot: bool
    version: int = 0  # bumped by every edit, so wait_for_message can see edits
    deleted: bool = False
    reactions: list[JsonDict] = field(default_factory=list)


class Chat:
    """A private chat between one bot and one user."""

    def __init__(self, user: FakeUser) -> None:
        self.user = user
        self.messages: dict[int, StoredMessage] = {}
        self.actions: list[str] = []
        self.drafts: list[JsonDict] = []  # sendMessageDraft previews, oldest first
        self.started = False  # the user pressed Start (wrote to the bot) at some point
        self.blocked = False
        self.instance = str(random.randint(10**18, 9 * 10**18))  # callback_query.chat_instance
        self._ids = itertools.count(1)

    def next_message_id(self) -> int:
        return next(self._ids)

    def live(self, message_id: int) -> StoredMessage | None:
        stored = self.messages.get(message_id)
        return None if stored is None or stored.deleted else stored


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class Fault:
    method: str | None  # lower-case; None: any method
    error: BotApiError
    remaining: int
