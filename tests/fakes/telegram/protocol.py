"""The Bot API's vocabulary as the fake speaks it: the JSON types, Telegram's limits and fixed
error descriptions, and the two shapes of an answer that is not a plain result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Described:
    """A successful result that Telegram answers with a description too (the webhook methods)."""

    result: Any
    description: str
