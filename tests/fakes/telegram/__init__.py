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
`user_sends_document`, `user_sends_in_group`, `channel_posts`, `user_blocks`, `open_chat`;
`wait_for_message`, `sent_messages`, `messages`, `deleted`, `calls` (`(method, params)` tuples
with `.status` and `.response`), `calls_to`; faults `flood(seconds)`, `block(chat_id)`,
`rate_limit`, `fail_next`, `revoke`. `add_bot(flood_limits=FloodLimits())` holds a bot to
Telegram's flood control, per chat and overall.
Messages handed to tests are copies; a document message carries its uploaded bytes as `_bytes`.

Updates wait in one queue per bot: getUpdates long-polls it (`offset` confirms, `limit`,
`timeout`, `allowed_updates`), a newer getUpdates terminates a pending one with 409, and while a
webhook is set the fake POSTs each update to it (header `X-Telegram-Bot-Api-Secret-Token`),
retrying until a 2xx, and getUpdates answers 409.

Known gaps: private chats only (group messages and channel posts can be delivered to the bot, but
the fake keeps no group chats: no answers there, no topics; no inline mode, business, payments);
of all media only documents (sendDocument, getFile, downloads); reply keyboards are accepted
but not shown on messages; webhooks must point at loopback (Telegram demands HTTPS; the fake
never leaves the machine) and are delivered one at a time; no flood control unless a test asks
for it; descriptions for malformed parameter values are approximations; callback queries
never expire; text is not trimmed of surrounding whitespace as Telegram does; MarkdownV2's
expandable block quotes are not parsed.

The package, one module per job: `server` (FakeTelegram: routes, users, bots), `params` (how a
method's parameters are read), `bot` (FakeBot, put together from `state`, `dispatch`, `updates`,
`webhook`, `users`, `readback`, `messages`, `chat_methods` and `profile`), `formatting` (parse_mode
and automatic entities, over `text`, `html_mode` and `markdown_mode`), `records` (what the fake
keeps), `flood` (Telegram's flood control) and `protocol` (limits, Telegram's error descriptions,
BotApiError). The names below are re-exported here, so callers import from `tests.fakes.telegram`.
"""

from tests.fakes.telegram.bot import FakeBot
from tests.fakes.telegram.flood import MESSAGE_METHODS, FloodLimits
from tests.fakes.telegram.formatting import detect_entities, parse_formatted
from tests.fakes.telegram.protocol import (
    ACCEPTED_BY_DEFAULT,
    BLOCKED_BY_USER,
    BUTTON_ACTIONS,
    CANT_INITIATE,
    CHAT_ACTIONS,
    LOOPBACK,
    MAX_CAPTION_UTF16,
    MAX_TEXT_UTF16,
    NOT_FOUND,
    NOT_MODIFIED,
    NOT_SENT_BY_DEFAULT,
    QUERY_TOO_OLD,
    REACTION_EMOJI,
    TERMINATED_BY_OTHER_POLL,
    TERMINATED_BY_SET_WEBHOOK,
    UNAUTHORIZED,
    WEBHOOK_IS_ACTIVE,
    BotApiError,
    JsonDict,
    MessagePredicate,
    UserRef,
    bad_request,
)
from tests.fakes.telegram.records import ApiCall, FakeUser, StoredFile
from tests.fakes.telegram.server import FakeTelegram
from tests.fakes.telegram.text import EntityParseError, utf16_len

__all__ = [
    "ACCEPTED_BY_DEFAULT", "ApiCall", "BLOCKED_BY_USER", "BUTTON_ACTIONS", "BotApiError", "CANT_INITIATE",
    "CHAT_ACTIONS", "EntityParseError", "FakeBot", "FakeTelegram", "FakeUser", "FloodLimits", "JsonDict",
    "LOOPBACK", "MAX_CAPTION_UTF16", "MAX_TEXT_UTF16", "MESSAGE_METHODS", "MessagePredicate", "NOT_FOUND",
    "NOT_MODIFIED", "NOT_SENT_BY_DEFAULT", "QUERY_TOO_OLD", "REACTION_EMOJI", "StoredFile", "TERMINATED_BY_OTHER_POLL",
    "TERMINATED_BY_SET_WEBHOOK", "UNAUTHORIZED", "UserRef", "WEBHOOK_IS_ACTIVE", "bad_request",
    "detect_entities", "parse_formatted", "utf16_len",
]
