"""What tests make users do: write to a bot, send it a document, press its buttons, block it."""

from __future__ import annotations

import asyncio
import random

from tests.fakes.telegram.formatting import detect_entities
from tests.fakes.telegram.params import Upload
from tests.fakes.telegram.protocol import JsonDict, UserRef
from tests.fakes.telegram.records import Chat, FakeUser, StoredMessage
from tests.fakes.telegram.state import deep_copy, now, without_reply
from tests.fakes.telegram.updates import UpdateQueue


class UserActions(UpdateQueue):
    """An action reaches the bot as the update Telegram would send (message, callback_query,
    my_chat_member); block, unblock and open_chat set a chat's state without one."""

    async def user_sends(self, user: UserRef, text: str, *, reply_to: int | None = None) -> JsonDict:
        """The user writes `text` in their private chat with the bot; returns their message."""
        chat = await self._chat_started_by(self.telegram._resolve_user(user))
        message = self._user_message(chat, reply_to)
        message["text"] = text
        entities = detect_entities(text)
        if entities:
            message["entities"] = entities
        return self._receive(chat, message)

    async def user_sends_in_group(self, user: UserRef, text: str, *, chat_id: int = -1001234567890,
                                  chat_type: str = "supergroup") -> JsonDict:
        """The user writes `text` in a group the bot is a member of; returns the message. The
        fake keeps no group chats: what the bot sends there answers 400 "chat not found"."""
        fake_user = self.telegram._resolve_user(user)
        message = {"message_id": 1, "from": fake_user.as_user(), "date": now(), "text": text,
                   "chat": {"id": chat_id, "title": "A group", "type": chat_type}}
        if detect_entities(text):
            message["entities"] = detect_entities(text)
        self._enqueue("message", message)
        await asyncio.sleep(0)
        return deep_copy(message)

    async def channel_posts(self, text: str, *, chat_id: int = -1009876543210) -> JsonDict:
        """A post in a channel the bot administers (no sender: the channel speaks)."""
        chat = {"id": chat_id, "title": "A channel", "type": "channel"}
        post = {"message_id": 1, "sender_chat": chat, "chat": chat, "date": now(), "text": text}
        self._enqueue("channel_post", post)
        await asyncio.sleep(0)
        return deep_copy(post)

    async def user_sends_document(
        self, user: UserRef, data: bytes, file_name: str, *,
        mime_type: str = "application/octet-stream", caption: str | None = None,
    ) -> JsonDict:
        chat = await self._chat_started_by(self.telegram._resolve_user(user))
        message = self._user_message(chat, None)
        message["document"] = self._store_file(Upload(file_name, mime_type, data), "documents").as_document()
        if caption:
            message["caption"] = caption
        return self._receive(chat, message)

    async def user_presses(self, user: UserRef, message: JsonDict | int, callback_data: str, *,
                           offered: bool = True) -> JsonDict:
        """The user taps the inline button carrying `callback_data` on a message the bot sent;
        returns the CallbackQuery (its "id" keys `callback_answers`). `offered=False`: a button
        the message had as an earlier release of the bot sent it, whatever its markup says now."""
        fake_user = self.telegram._resolve_user(user)
        chat = self._chats.get(fake_user.id)
        message_id = message["message_id"] if isinstance(message, dict) else int(message)
        stored = chat.live(message_id) if chat else None
        if stored is None:
            raise LookupError(f"{fake_user.id} has no message {message_id} from {self!r} to press")
        buttons = [b for row in stored.message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if offered and not any(b.get("callback_data") == callback_data for b in buttons):
            on_message = [b.get("callback_data") for b in buttons]
            raise LookupError(f"message {message_id} has no button with callback_data={callback_data!r}: {on_message}")
        query_id = str(random.randint(10**17, 9 * 10**18))
        self._open_queries.add(query_id)
        query = {"id": query_id, "from": fake_user.as_user(), "message": deep_copy(stored.message),
                 "chat_instance": chat.instance, "data": callback_data}
        self._enqueue("callback_query", query)
        await asyncio.sleep(0)
        return deep_copy(query)

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
        chat = self._chats.setdefault(fake_user.id, Chat(fake_user))
        chat.started = chat.blocked = True

    def unblock(self, chat_id: int) -> None:
        chat = self._chats.get(chat_id)
        if chat:
            chat.blocked = False

    def open_chat(self, user: UserRef) -> None:
        """As if the user had pressed Start long ago: the bot may write to them, no update is sent."""
        fake_user = self.telegram._resolve_user(user)
        self._chats.setdefault(fake_user.id, Chat(fake_user)).started = True

    async def _chat_started_by(self, user: FakeUser) -> Chat:
        chat = self._chats.setdefault(user.id, Chat(user))
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

        return {"chat": user.as_chat(), "from": user.as_user(), "date": now(),
                "old_chat_member": member(old), "new_chat_member": member(new)}

    def _user_message(self, chat: Chat, reply_to: int | None) -> JsonDict:
        message: JsonDict = {"message_id": chat.next_message_id(), "from": chat.user.as_user(),
                             "chat": chat.user.as_chat(), "date": now()}
        replied = chat.live(reply_to) if reply_to else None
        if replied:
            message["reply_to_message"] = without_reply(replied.message)
        return message

    def _receive(self, chat: Chat, message: JsonDict) -> JsonDict:
        chat.messages[message["message_id"]] = StoredMessage(message, from_bot=False)
        self._enqueue("message", message)
        return self._for_test(message)
