"""What tests read back from a bot: its messages as they look now, the next one it sends, chat
actions, drafts, reactions, recorded calls and uploaded bytes."""

from __future__ import annotations

import asyncio

from tests.fakes.telegram.protocol import JsonDict, MessagePredicate
from tests.fakes.telegram.records import ApiCall
from tests.fakes.telegram.state import BotState, deep_copy


class Readback(BotState):
    """Messages are handed out as copies, so a test that changes one cannot change the fake's state."""

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
        return deep_copy(chat.drafts) if chat else []

    def reactions(self, chat_id: int, message_id: int) -> list[JsonDict]:
        chat = self._chats.get(chat_id)
        stored = chat.messages.get(message_id) if chat else None
        return deep_copy(stored.reactions) if stored else []

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def document_bytes(self, message: JsonDict) -> bytes:
        """The uploaded bytes of a document message (also in test-facing copies as `_bytes`)."""
        return self.files[message["document"]["file_id"]].data

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
