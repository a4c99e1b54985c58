"""The Bot API methods on a private chat and its messages: send, edit, delete, react, chat actions,
callback answers, files, getChat."""

from __future__ import annotations

import re

from tests.fakes.telegram.dispatch import api_method
from tests.fakes.telegram.messages import BotMessages
from tests.fakes.telegram.params import Params
from tests.fakes.telegram.protocol import (
    CHAT_ACTIONS,
    MAX_CAPTION_UTF16,
    MAX_TEXT_UTF16,
    QUERY_TOO_OLD,
    REACTION_EMOJI,
    JsonDict,
    bad_request,
)
from tests.fakes.telegram.records import StoredFile
from tests.fakes.telegram.state import deep_copy
from tests.fakes.telegram.text import utf16_len


class ChatMethods(BotMessages):
    """Each method checks its parameters as Telegram does and answers with Telegram's descriptions."""

    @api_method("sendMessage")
    async def _send_message(self, p: Params) -> JsonDict:
        chat = self._chat(p)
        text, entities = self._text_and_entities(p, "text", "entities", required=True)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise bad_request("message is too long")
        reply_to = self._reply_target(chat, p)
        keyboard = self._inline_keyboard(p)
        return self._new_bot_message(chat, {"text": text, "entities": entities}, reply_to, keyboard)

    @api_method("sendMessageDraft")
    async def _send_message_draft(self, p: Params) -> bool:
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

    @api_method("sendDocument")
    async def _send_document(self, p: Params) -> JsonDict:
        chat = self._chat(p)
        document = self._document_from(p)
        caption, caption_entities = self._text_and_entities(p, "caption", "caption_entities", required=False)
        if utf16_len(caption) > MAX_CAPTION_UTF16:
            raise bad_request("message caption is too long")
        reply_to = self._reply_target(chat, p)
        keyboard = self._inline_keyboard(p)
        content = {"document": document.as_document(), "caption": caption, "caption_entities": caption_entities}
        return self._new_bot_message(chat, content, reply_to, keyboard)

    def _document_from(self, p: Params) -> StoredFile:
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

    @api_method("getFile")
    async def _get_file(self, p: Params) -> JsonDict:
        stored = self.files.get(p.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    @api_method("editMessageText")
    async def _edit_message_text(self, p: Params) -> JsonDict:
        chat = self._chat(p)
        stored = self._editable(chat, p, "message to edit not found")
        if "text" not in stored.message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._text_and_entities(p, "text", "entities", required=True)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise bad_request("message is too long")
        return self._apply_edit(stored, {"text": text, "entities": entities}, self._inline_keyboard(p))

    @api_method("editMessageCaption")
    async def _edit_message_caption(self, p: Params) -> JsonDict:
        chat = self._chat(p)
        stored = self._editable(chat, p, "message to edit not found")
        if "text" in stored.message:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._text_and_entities(p, "caption", "caption_entities", required=False)
        content = {"caption": caption, "caption_entities": entities}
        return self._apply_edit(stored, content, self._inline_keyboard(p))

    @api_method("editMessageReplyMarkup")
    async def _edit_message_reply_markup(self, p: Params) -> JsonDict:
        chat = self._chat(p)
        stored = self._editable(chat, p, "message to edit not found")
        return self._apply_edit(stored, {}, self._inline_keyboard(p))

    @api_method("deleteMessage")
    async def _delete_message(self, p: Params) -> bool:
        chat = self._chat(p, writing=False)
        message_id = p.integer("message_id", missing="message identifier is not specified")
        stored = chat.live(message_id or 0)
        if stored is None:
            raise bad_request("message to delete not found")
        stored.deleted = True
        self._changed.notify()
        return True

    @api_method("deleteMessages")
    async def _delete_messages(self, p: Params) -> bool:
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

    @api_method("answerCallbackQuery")
    async def _answer_callback_query(self, p: Params) -> bool:
        query_id = p.text("callback_query_id") or ""
        if query_id not in self._open_queries:
            raise bad_request(QUERY_TOO_OLD)
        if len(p.text("text") or "") > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = dict(p.values)
        return True

    @api_method("sendChatAction")
    async def _send_chat_action(self, p: Params) -> bool:
        chat = self._chat(p)
        action = p.text("action") or ""
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.actions.append(action)
        return True

    @api_method("setMessageReaction")
    async def _set_message_reaction(self, p: Params) -> bool:
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
        stored.reactions = deep_copy(reaction)
        return True

    @api_method("getChat")
    async def _get_chat(self, p: Params) -> JsonDict:
        chat = self._chat(p, writing=False)
        no_gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"), False)
        return {**chat.user.as_chat(), "accent_color_id": chat.user.id % 7, "max_reaction_count": 11,
                "accepted_gift_types": no_gifts}
