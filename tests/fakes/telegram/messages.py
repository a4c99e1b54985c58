"""How a bot's message is checked and built: the chat it goes to, its text and entities, the message
it replies to, its inline keyboard, and edits."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.telegram.formatting import detect_entities, parse_formatted
from tests.fakes.telegram.params import INTEGER, Params
from tests.fakes.telegram.protocol import (
    BLOCKED_BY_USER,
    BUTTON_ACTIONS,
    CANT_INITIATE,
    NOT_MODIFIED,
    BotApiError,
    JsonDict,
    bad_request,
)
from tests.fakes.telegram.records import Chat, StoredMessage
from tests.fakes.telegram.state import BotState, deep_copy, now, without_reply
from tests.fakes.telegram.text import EntityParseError


class BotMessages(BotState):
    """The checks the message methods share, with Telegram's error descriptions."""

    def _chat(self, p: Params, *, writing: bool = True) -> Chat:
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
        self, p: Params, text_key: str, entities_key: str, *, required: bool,
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

    def _reply_target(self, chat: Chat, p: Params) -> JsonDict | None:
        parameters = p.json("reply_parameters", what="reply parameters")
        if isinstance(parameters, dict):
            message_id = parameters.get("message_id")
            allow_missing = bool(parameters.get("allow_sending_without_reply"))
        else:
            message_id, allow_missing = p.integer("reply_to_message_id"), p.flag("allow_sending_without_reply")
        if not message_id:
            return None
        if not isinstance(message_id, int) and not INTEGER.fullmatch(str(message_id)):
            raise bad_request("invalid reply_parameters specified")
        replied = chat.live(int(message_id))
        if replied is None:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return without_reply(replied.message)

    def _inline_keyboard(self, p: Params) -> JsonDict | None:
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
        return {"inline_keyboard": deep_copy(rows)} if rows else None

    def _new_bot_message(self, chat: Chat, content: JsonDict, reply_to: JsonDict | None,
                         keyboard: JsonDict | None) -> JsonDict:
        message: JsonDict = {"message_id": chat.next_message_id(), "from": self.as_user(),
                             "chat": chat.user.as_chat(), "date": now()}
        if reply_to:
            message["reply_to_message"] = reply_to
        message.update({k: v for k, v in content.items() if v not in (None, [], "")})
        if keyboard:
            message["reply_markup"] = keyboard
        chat.messages[message["message_id"]] = StoredMessage(message, from_bot=True)
        self._changed.notify()
        return deep_copy(message)

    def _editable(self, chat: Chat, p: Params, not_found: str) -> StoredMessage:
        if p.values.get("inline_message_id"):
            raise bad_request("the fake Bot API does not support inline messages")
        message_id = p.integer("message_id", missing="message identifier is not specified")
        stored = chat.live(message_id or 0)
        if stored is None:
            raise bad_request(not_found)
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        return stored

    def _apply_edit(self, stored: StoredMessage, content: JsonDict, keyboard: JsonDict | None) -> JsonDict:
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
        edited["edit_date"] = now()
        stored.message = edited
        stored.version += 1
        self._changed.notify()
        return deep_copy(edited)


def _visible_content(message: JsonDict) -> tuple[Any, ...]:
    return (message.get("text"), message.get("entities") or [], message.get("caption"),
            message.get("caption_entities") or [], message.get("reply_markup"))
