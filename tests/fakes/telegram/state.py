"""A bot's server-side state, which every part of FakeBot builds on, and the small helpers they share."""

from __future__ import annotations

import asyncio
import copy
import random
import string
import time
from typing import TYPE_CHECKING, Any

from tests.fakes.telegram.flood import FloodControl
from tests.fakes.telegram.params import Upload
from tests.fakes.telegram.protocol import JsonDict
from tests.fakes.telegram.records import ApiCall, Chat, Fault, StoredFile, Webhook

if TYPE_CHECKING:
    from tests.fakes.telegram.server import FakeTelegram


class Signal:
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


def now() -> int:
    return int(time.time())


def deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)


def without_reply(message: JsonDict) -> JsonDict:
    """A replied-to message as Telegram embeds it: without its own reply_to_message."""
    shallow = deep_copy(message)
    shallow.pop("reply_to_message", None)
    return shallow


def random_text(length: int, alphabet: str = string.ascii_letters + string.digits + "_-") -> str:
    return "".join(random.choices(alphabet, k=length))


class BotState:
    """What one bot of the fake holds. FakeBot's parts (users, readback, updates, webhooks, methods)
    are mixins over it, so each reads the same attributes."""

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
        self.flood_control: FloodControl | None = None  # Telegram's flood control, when a test asks for it
        self._chats: dict[int, Chat] = {}
        self._updates: list[JsonDict] = []  # not yet confirmed, oldest first
        self._next_update_id = random.randint(10**8, 9 * 10**8)
        self._allowed_updates: list[str] = []
        self._changed = Signal()
        self._poll_turn: object | None = None
        self._webhook: Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._faults: list[Fault] = []
        self._accepted: dict[str, Any] = {}
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._open_queries: set[str] = set()
        self._returned: set[tuple[int, int, int]] = set()

    def __repr__(self) -> str:
        return f"<FakeBot @{self.username} id={self.id}>"

    def as_user(self) -> JsonDict:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def _for_test(self, message: JsonDict) -> JsonDict:
        """A copy for tests: a document message also carries its uploaded bytes as `_bytes`."""
        copied = deep_copy(message)
        stored = self.files.get((copied.get("document") or {}).get("file_id", ""))
        if stored is not None:
            copied["_bytes"] = stored.data
        return copied

    def _store_file(self, upload: Upload, folder: str) -> StoredFile:
        number = len(self.files)
        suffix = "." + upload.filename.rsplit(".", 1)[1] if upload.filename and "." in upload.filename else ""
        stored = StoredFile(
            file_id="BQAC" + random_text(60), file_unique_id="AgAD" + random_text(12), data=upload.data,
            file_name=upload.filename, mime_type=upload.content_type, file_path=f"{folder}/file_{number}{suffix}",
        )
        self.files[stored.file_id] = stored
        return stored
