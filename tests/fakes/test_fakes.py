"""The fake servers in tests/fakes, driven by real clients: python-telegram-bot for the Bot API,
and httpx sending exactly what the openai and anthropic SDKs send for the model providers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReactionTypeEmoji,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.model import FakeModel, ModelRequest, RecordedRequest
from tests.fakes.telegram import FakeBot, FakeTelegram, detect_entities, parse_formatted

USER_ID = 424242
JsonValue = Any


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(webhook_retry_s=0.05) as fake:
        yield fake


@pytest.fixture
def bot(telegram: FakeTelegram) -> FakeBot:
    return telegram.add_bot(username="clawfleet_test_bot")


@asynccontextmanager
async def ptb_bot(telegram: FakeTelegram, fake_bot: FakeBot) -> AsyncIterator[Bot]:
    async with Bot(fake_bot.token, base_url=f"{telegram.api_url}/bot",
                   base_file_url=f"{telegram.api_url}/file/bot") as client:
        yield client


def build_app(telegram: FakeTelegram, fake_bot: FakeBot) -> Application:
    return (Application.builder().token(fake_bot.token).base_url(f"{telegram.api_url}/bot")
            .base_file_url(f"{telegram.api_url}/file/bot").build())


@asynccontextmanager
async def polling(app: Application, **start_polling: Any) -> AsyncIterator[Application]:
    """What Application.run_polling does, without owning the event loop."""
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=timedelta(seconds=5), **start_polling)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@asynccontextmanager
async def receiver(statuses: list[int] | None = None,
                   reply: dict[str, Any] | None = None) -> AsyncIterator[tuple[str, asyncio.Queue]]:
    """A small webhook endpoint on loopback; answers the given statuses first, then 200
    (with `reply` as its JSON body when given)."""
    received: asyncio.Queue = asyncio.Queue()
    pending = list(statuses or [])

    async def hook(request: web.Request) -> web.Response:
        received.put_nowait((dict(request.headers), await request.json()))
        if pending:
            return web.Response(status=pending.pop(0))
        return web.json_response(reply) if reply else web.Response()

    app = web.Application()
    app.router.add_post("/telegram", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/telegram", received
    finally:
        await runner.cleanup()


# -- Bot API: identity, tokens, the wire format ------------------------------------------------------
async def test_get_me_through_python_telegram_bot(telegram: FakeTelegram, bot: FakeBot) -> None:
    async with ptb_bot(telegram, bot) as client:
        me = await client.get_me()
    assert (me.id, me.username, me.is_bot) == (bot.id, "clawfleet_test_bot", True)
    assert bot.calls_to("getMe") and bot.calls_to("getMe")[0].status == 200
    head, tail = bot.token.split(":")
    assert head == str(bot.id) and len(tail) == 35 and tail.startswith("AA")  # BotFather's shape


async def test_unknown_and_malformed_tokens_answer_as_telegram_does(telegram: FakeTelegram) -> None:
    unknown = telegram.add_bot().token.split(":")[0] + ":AA" + "x" * 33  # right shape, no such bot
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{telegram.api_url}/bot{unknown}/getMe")
        assert answer.status_code == 401
        assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        answer = await http.get(f"{telegram.api_url}/botnot-a-token/getMe")
        assert (answer.status_code, answer.json()["description"]) == (404, "Not Found")
    with pytest.raises(InvalidToken):
        async with Bot(unknown, base_url=f"{telegram.api_url}/bot"):
            pass


async def test_json_query_and_form_bodies_are_all_understood(telegram: FakeTelegram, bot: FakeBot) -> None:
    bot.open_chat(USER_ID)
    api = f"{telegram.api_url}/bot{bot.token}"
    async with httpx.AsyncClient() as http:  # grammY (OpenClaw) posts JSON
        sent = (await http.post(f"{api}/sendMessage", json={"chat_id": USER_ID, "text": "json body"})).json()
        assert sent["ok"] and sent["result"]["text"] == "json body" and sent["result"]["chat"]["type"] == "private"
        quoted = await http.post(f"{api}/SENDMESSAGE", json={  # method names are case-insensitive
            "chat_id": USER_ID, "text": "a reply", "reply_parameters": {"message_id": sent["result"]["message_id"]}})
        assert quoted.json()["result"]["reply_to_message"]["text"] == "json body"
        by_query = (await http.get(f"{api}/sendMessage", params={"chat_id": str(USER_ID), "text": "query"})).json()
        assert by_query["result"]["message_id"] == sent["result"]["message_id"] + 2  # ids per chat increase
        missing = await http.post(f"{api}/sendMessage",
                                  json={"chat_id": USER_ID, "text": "x", "reply_to_message_id": 999})
        assert missing.json()["description"] == "Bad Request: message to be replied not found"
        described = await http.post(f"{api}/setMyDescription", data={"description": "hi"})  # form body
        assert described.json() == {"ok": True, "result": True}
        assert (await http.get(f"{api}/getMyDescription")).json()["result"] == {"description": "hi"}
        assert (await http.post(f"{api}/getMyName", json={})).json()["result"] == {"name": bot.first_name}
        assert (await http.post(f"{api}/setChatMenuButton", json={})).json() == {"ok": True, "result": True}
    assert bot.calls_to("setMyDescription")[0].params == {"description": "hi"}
    assert ("setChatMenuButton", {}) in bot.calls  # calls are (method, params) pairs


async def test_unknown_methods_answer_404_and_are_logged(telegram: FakeTelegram, bot: FakeBot, capsys) -> None:
    api = f"{telegram.api_url}/bot{bot.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api}/sendTelepathy", json={}) as unknown:
            assert (unknown.status, (await unknown.json())["description"]) == (404, "Not Found")
        bot.accept("sendTelepathy", {"sent": True})  # a test may list a method it needs
        async with http.post(f"{api}/sendTelepathy", json={}) as accepted:
            assert await accepted.json() == {"ok": True, "result": {"sent": True}}
    method, params = bot.calls[0]
    assert (method, params, bot.calls[0].status) == ("sendTelepathy", {}, 404)
    assert "unknown Bot API method 'sendTelepathy'" in capsys.readouterr().err


# -- long polling -------------------------------------------------------------------------------------
async def test_a_message_reaches_a_polling_application_whose_handler_replies(
    telegram: FakeTelegram, bot: FakeBot,
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"Welcome, {update.effective_user.first_name}!")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"you said: {update.message.text}", do_quote=True)

    app = build_app(telegram, bot)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    ada = telegram.user(USER_ID, first_name="Ada", username="ada")
    async with polling(app):
        command = await bot.user_sends(ada, "/start")
        assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        assert (await bot.wait_for_message(USER_ID, timeout=5))["text"] == "Welcome, Ada!"
        said = await bot.user_sends(ada, "hello")
        answer = await bot.wait_for_message(USER_ID, timeout=5)
        assert answer["text"] == "you said: hello"
        assert answer["reply_to_message"]["message_id"] == said["message_id"]
    assert bot.pending_updates == []  # the updater confirmed what it handled
    assert [m["message_id"] for m in bot.messages(USER_ID)] == [1, 2, 3, 4]


async def test_get_updates_long_polls_and_honours_offset_limit_and_allowed_updates(
    telegram: FakeTelegram, bot: FakeBot,
) -> None:
    async with ptb_bot(telegram, bot) as client:
        waiting = asyncio.create_task(client.get_updates(timeout=5))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # a real long poll: it waits
        await bot.user_sends(USER_ID, "first")
        first = await asyncio.wait_for(waiting, 2)
        assert [u.message.text for u in first] == ["first"]
        await bot.user_sends(USER_ID, "second")
        again = await client.get_updates(timeout=0)
        assert [u.message.text for u in again] == ["first", "second"]  # nothing confirmed yet
        assert [u.message.text for u in await client.get_updates(offset=first[0].update_id + 1, limit=1)] == ["second"]
        assert await client.get_updates(offset=again[-1].update_id + 1) == ()
        await client.get_updates(allowed_updates=["callback_query"])
        await bot.user_sends(USER_ID, "filtered out")
        assert await client.get_updates(timeout=0) == ()


async def test_group_messages_and_channel_posts_arrive_but_the_fake_keeps_no_group_chat(
    telegram: FakeTelegram, bot: FakeBot,
) -> None:
    async with ptb_bot(telegram, bot) as client:
        said = await bot.user_sends_in_group(USER_ID, "/start@some_bot")
        posted = await bot.channel_posts("news")
        group, channel = await client.get_updates(timeout=0)
        assert (group.message.chat.type, group.message.from_user.id, group.message.text) == ("supergroup", USER_ID,
                                                                                             "/start@some_bot")
        assert group.message.entities[0].type == "bot_command"
        assert (channel.channel_post.chat.type, channel.channel_post.from_user) == ("channel", None)
        with pytest.raises(BadRequest, match="Chat not found"):
            await client.send_message(said["chat"]["id"], "hello, group")
        assert posted["chat"]["id"] != said["chat"]["id"]


async def test_two_pollers_of_one_bot_get_409_conflict(telegram: FakeTelegram, bot: FakeBot) -> None:
    async def poll(http: aiohttp.ClientSession, timeout: int) -> tuple[int, Any]:
        async with http.post(f"{telegram.api_url}/bot{bot.token}/getUpdates",
                             json={"timeout": timeout, "allowed_updates": ["message"]}) as answer:
            return answer.status, await answer.json()

    async with aiohttp.ClientSession() as http:  # the exact answer first
        older = asyncio.create_task(poll(http, 5))
        await asyncio.sleep(0.05)
        newer = asyncio.create_task(poll(http, 0))
        status, terminated = await asyncio.wait_for(older, 2)
        assert status == 409 and terminated == {"ok": False, "error_code": 409, "description": (
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")}
        assert await newer == (200, {"ok": True, "result": []})

    errors: list[TelegramError] = []
    async with polling(build_app(telegram, bot), error_callback=errors.append):
        await asyncio.sleep(0.05)
        async with ptb_bot(telegram, bot) as second_instance:
            with pytest.raises(Conflict, match="terminated by other getUpdates request"):
                await second_instance.get_updates(timeout=5)  # the first one retries and takes over
    assert any(isinstance(error, Conflict) for error in errors)


# -- messages, keyboards, edits ------------------------------------------------------------------------
async def test_inline_keyboard_press_reaches_the_callback_handler(telegram: FakeTelegram, bot: FakeBot) -> None:
    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Deploy", callback_data="deploy:1"),
                                          InlineKeyboardButton("Docs", url="https://example.org/docs")]])
        await update.message.reply_text("Ready?", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("Deploying…")
        await update.callback_query.edit_message_text(f"Deploying {update.callback_query.data}")

    app = build_app(telegram, bot)
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(pressed))
    async with polling(app):
        await bot.user_sends(USER_ID, "/menu")
        offer = await bot.wait_for_message(USER_ID, timeout=5)
        assert offer["reply_markup"]["inline_keyboard"][0][0] == {"text": "Deploy", "callback_data": "deploy:1"}
        with pytest.raises(LookupError):
            await bot.user_presses(USER_ID, offer, "no-such-button")
        query = await bot.user_presses(telegram.user(USER_ID), offer, "deploy:1")
        assert query["data"] == "deploy:1" and query["message"]["message_id"] == offer["message_id"]
        edited = await bot.wait_for_message(USER_ID, lambda m: m["text"].startswith("Deploying"), timeout=5)
    assert edited["message_id"] == offer["message_id"] and "edit_date" in edited
    assert "reply_markup" not in edited  # editMessageText without reply_markup drops the keyboard
    assert bot.callback_answers[query["id"]]["text"] == "Deploying…"
    assert bot.sent_messages(USER_ID) == [edited]


async def test_edits_deletes_and_their_errors_surface_as_python_telegram_bot_errors(
    telegram: FakeTelegram, bot: FakeBot,
) -> None:
    bot.open_chat(USER_ID)
    async with ptb_bot(telegram, bot) as client:
        sent = await client.send_message(USER_ID, "Deploying…")
        edited = await client.edit_message_text("Deployed ✅", chat_id=USER_ID, message_id=sent.message_id)
        assert edited.text == "Deployed ✅" and edited.edit_date is not None
        with pytest.raises(BadRequest, match="Message is not modified: specified new message content"):
            await client.edit_message_text("Deployed ✅", chat_id=USER_ID, message_id=sent.message_id)
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Restart", callback_data="restart")]])
        await client.edit_message_reply_markup(USER_ID, sent.message_id, reply_markup=keyboard)
        with pytest.raises(BadRequest, match="not modified"):
            await client.edit_message_reply_markup(USER_ID, sent.message_id, reply_markup=keyboard)
        assert await client.delete_message(USER_ID, sent.message_id) is True
        assert bot.deleted(USER_ID, sent.message_id) and bot.sent_messages(USER_ID) == []
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await client.delete_message(USER_ID, sent.message_id)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await client.edit_message_text("late", chat_id=USER_ID, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await client.send_message(USER_ID, "x", reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("long", callback_data="x" * 65)]]))


async def test_wait_for_message_sees_new_messages_and_edits_once_each(telegram: FakeTelegram, bot: FakeBot) -> None:
    bot.open_chat(USER_ID)
    async with ptb_bot(telegram, bot) as client:
        first = await client.send_message(USER_ID, "step 1")
        assert (await bot.wait_for_message(USER_ID))["text"] == "step 1"
        await client.edit_message_text("step 2", chat_id=USER_ID, message_id=first.message_id)
        assert (await bot.wait_for_message(USER_ID))["text"] == "step 2"  # the edit is a new state
        with pytest.raises(TimeoutError, match="step 2"):
            await bot.wait_for_message(USER_ID, timeout=0.05)  # nothing new since


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own int retry_after
async def test_flood_control_answers_429_with_retry_after(telegram: FakeTelegram, bot: FakeBot) -> None:
    bot.open_chat(USER_ID)
    bot.rate_limit("sendMessage", retry_after=7)
    async with ptb_bot(telegram, bot) as client:
        with pytest.raises(RetryAfter) as raised:
            await client.send_message(USER_ID, "too fast")
        assert str(raised.value) == "Flood control exceeded. Retry in 7 seconds"
        assert (await client.send_message(USER_ID, "later")).text == "later"  # only once
    flooded = bot.calls_to("sendMessage")[0]
    assert flooded.status == 429 and flooded.response == {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7}}


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_and_block_shortcuts(telegram: FakeTelegram, bot: FakeBot) -> None:
    ada = telegram.user(USER_ID, "Ada", "ada")
    assert ada["id"] == USER_ID and dict(ada) == {"id": USER_ID, "is_bot": False, "first_name": "Ada",
                                                  "username": "ada", "language_code": "en"}
    await bot.user_sends({"id": USER_ID, "is_bot": False, "first_name": "Ada"}, "hi")  # a User dict works too
    async with ptb_bot(telegram, bot) as client:
        bot.flood(3)
        with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
            await client.get_me()  # any method: the next call only
        assert (await client.get_me()).id == bot.id
        bot.block(USER_ID)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await client.send_message(USER_ID, "hello?")
        bot.unblock(USER_ID)
        assert (await client.send_message(USER_ID, "hello!")).text == "hello!"
    assert [call.status for call in bot.calls] == [200, 429, 200, 403, 200]  # Bot.initialize calls getMe first


async def test_a_blocked_bot_gets_403_and_strangers_cannot_be_written_to(telegram: FakeTelegram, bot: FakeBot) -> None:
    ada = telegram.user(USER_ID, first_name="Ada")
    stranger = telegram.user(first_name="Bob")
    async with ptb_bot(telegram, bot) as client:
        with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
            await client.send_message(stranger.id, "hi")
        with pytest.raises(BadRequest, match="Chat not found"):
            await client.send_message(123, "hi")
        await bot.user_sends(ada, "/start")
        await bot.user_blocks(ada)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await client.send_message(USER_ID, "are you there?")
        updates = await client.get_updates()
        assert updates[-1].my_chat_member.new_chat_member.status == "kicked"
        await bot.user_sends(ada, "I'm back")  # writing again unblocks
        assert (await client.send_message(USER_ID, "welcome back")).text == "welcome back"


async def test_commands_actions_reactions_and_chat_info(telegram: FakeTelegram, bot: FakeBot) -> None:
    await bot.user_sends(telegram.user(USER_ID, first_name="Ada", username="ada"), "hi")
    async with ptb_bot(telegram, bot) as client:
        await client.set_my_commands([BotCommand("deploy", "Deploy your assistant"), BotCommand("status", "Status")])
        assert [c.command for c in await client.get_my_commands()] == ["deploy", "status"]
        assert bot.commands() == [{"command": "deploy", "description": "Deploy your assistant"},
                                  {"command": "status", "description": "Status"}]
        assert bot.calls_to("setMyCommands")[0].params["commands"][0]["command"] == "deploy"
        with pytest.raises(BadRequest, match="Bot_command_invalid"):
            await client.set_my_commands([BotCommand("Deploy", "capital letters are refused")])
        await client.delete_my_commands()
        assert bot.commands() == []
        await client.send_chat_action(USER_ID, ChatAction.TYPING)
        assert bot.chat_actions(USER_ID) == ["typing"]
        assert await client.send_message_draft(USER_ID, draft_id=7, text="<i>Thinking</i>", parse_mode=ParseMode.HTML)
        assert bot.drafts(USER_ID) == [{"draft_id": 7, "text": "Thinking",
                                        "entities": [{"type": "italic", "offset": 0, "length": 8}]}]
        assert len(bot.messages(USER_ID)) == 1  # a draft is never a message
        await client.set_message_reaction(USER_ID, 1, ReactionTypeEmoji("👀"))
        assert bot.reactions(USER_ID, 1) == [{"type": "emoji", "emoji": "👀"}]
        with pytest.raises(BadRequest, match="Reaction_invalid"):
            await client.set_message_reaction(USER_ID, 1, ReactionTypeEmoji("🦖"))
        chat = await client.get_chat(USER_ID)
        assert (chat.type, chat.username, chat.first_name) == ("private", "ada", "Ada")


async def test_documents_are_uploaded_as_multipart_and_can_be_downloaded(telegram: FakeTelegram, bot: FakeBot) -> None:
    bot.open_chat(USER_ID)
    payload = b"%PDF-1.4 not really\x00\xff"
    async with ptb_bot(telegram, bot) as client:
        sent = await client.send_document(USER_ID, payload, filename="report.pdf", caption="<b>Report</b>",
                                          parse_mode=ParseMode.HTML)
        assert sent.document.file_name == "report.pdf" and sent.document.file_size == len(payload)
        assert sent.caption == "Report" and sent.caption_entities[0].type == "bold"
        assert bot.calls_to("sendDocument")[0].files["document"] == payload
        stored = bot.sent_messages(USER_ID)[-1]
        assert stored["_bytes"] == payload == bot.document_bytes(stored)
        assert stored["document"]["file_name"] == "report.pdf"
        file = await client.get_file(sent.document.file_id)
        assert bytes(await file.download_as_bytearray()) == payload
        again = await client.send_document(USER_ID, sent.document.file_id)  # by file_id, as Telegram allows
        assert again.document.file_id == sent.document.file_id


# -- formatting -------------------------------------------------------------------------------------------
async def test_parse_modes_produce_entities_and_telegram_s_errors(telegram: FakeTelegram, bot: FakeBot) -> None:
    bot.open_chat(USER_ID)
    async with ptb_bot(telegram, bot) as client:
        html = await client.send_message(USER_ID, "<b>Bold</b> &amp; <a href='https://x.org'>link</a>",
                                         parse_mode=ParseMode.HTML)
        assert html.text == "Bold & link"
        assert [(e.type, e.offset, e.length) for e in html.entities] == [("bold", 0, 4), ("text_link", 7, 4)]
        with pytest.raises(BadRequest, match='(?i)unsupported start tag "div" at byte offset 0'):
            await client.send_message(USER_ID, "<div>x</div>", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="(?i)character '.' is reserved"):
            await client.send_message(USER_ID, "Done.", parse_mode=ParseMode.MARKDOWN_V2)
        escaped = await client.send_message(USER_ID, r"*Done*\.", parse_mode=ParseMode.MARKDOWN_V2)
        assert escaped.text == "Done." and escaped.entities[0].type == "bold"


def test_formatting_parsers_follow_telegram() -> None:
    assert parse_formatted("<pre><code class=\"language-python\">x = 1</code></pre>", "HTML") == (
        "x = 1", [{"type": "pre", "offset": 0, "length": 5, "language": "python"}])
    assert parse_formatted("😀 <i>é</i>", "HTML")[1] == [{"type": "italic", "offset": 3, "length": 1}]  # UTF-16
    with pytest.raises(ValueError, match='Can\'t find end tag corresponding to start tag "b"'):
        parse_formatted("<b>open", "HTML")
    with pytest.raises(ValueError, match='expected "</i>", found "</b>"'):
        parse_formatted("<b><i>x</b></i>", "HTML")
    assert parse_formatted("__u__ ~s~ ||sp|| [a](https://x.org/a\\)b)", "MarkdownV2") == ("u s sp a", [
        {"type": "underline", "offset": 0, "length": 1}, {"type": "strikethrough", "offset": 2, "length": 1},
        {"type": "spoiler", "offset": 4, "length": 2}, {"type": "text_link", "offset": 7, "length": 1,
                                                         "url": "https://x.org/a)b"}])
    with pytest.raises(ValueError, match="Can't find end of Bold entity at byte offset 0"):
        parse_formatted("*bold", "MarkdownV2")
    assert parse_formatted("*b* _i_ `c`", "Markdown")[0] == "b i c"
    with pytest.raises(ValueError, match="Can't find end of the entity starting at byte offset 4"):
        parse_formatted("ok: *unclosed", "Markdown")
    assert [e["type"] for e in detect_entities("/help see https://x.org/a/b or @clawfleet_bot")] == [
        "bot_command", "url", "mention"]


# -- webhooks ---------------------------------------------------------------------------------------------
async def test_webhook_delivery_with_the_secret_header(telegram: FakeTelegram, bot: FakeBot) -> None:
    async with receiver(statuses=[500]) as (url, received), ptb_bot(telegram, bot) as client:
        assert await client.set_webhook(url, secret_token="s3cret-token", allowed_updates=["message"])
        await bot.user_sends(USER_ID, "via webhook")
        failed_headers, _ = await asyncio.wait_for(received.get(), 2)  # answered 500: Telegram retries
        headers, body = await asyncio.wait_for(received.get(), 2)
        secret_header = "X-Telegram-Bot-Api-Secret-Token"
        assert headers[secret_header] == "s3cret-token" == failed_headers[secret_header]
        assert headers["Content-Type"] == "application/json"
        assert Update.de_json(body, client).message.text == "via webhook"
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await client.get_updates()
        info = await client.get_webhook_info()
        assert (info.url, info.pending_update_count) == (url, 0)
        assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        assert await client.delete_webhook()
        await bot.user_sends(USER_ID, "polled again")
        assert [u.message.text for u in await client.get_updates()] == ["polled again"]
        with pytest.raises(BadRequest, match="only delivers to loopback"):
            await client.set_webhook("https://example.org/hook")


async def test_webhook_replies_user_documents_and_bulk_deletes(telegram: FakeTelegram, bot: FakeBot) -> None:
    document = await bot.user_sends_document(USER_ID, b"hello", "notes.txt", mime_type="text/plain", caption="notes")
    assert document["document"]["file_name"] == "notes.txt" and document["caption"] == "notes"
    assert bot.files[document["document"]["file_id"]].data == b"hello"
    inline_answer = {"method": "sendMessage", "chat_id": USER_ID, "text": "answered in the webhook reply"}
    async with receiver(reply=inline_answer) as (url, received), ptb_bot(telegram, bot) as client:
        await client.set_webhook(url, drop_pending_updates=True)  # the document's update is dropped
        said = await bot.user_sends(USER_ID, "hi")
        _, body = await asyncio.wait_for(received.get(), 2)
        assert body["message"]["message_id"] == said["message_id"]
        answer = await bot.wait_for_message(USER_ID, timeout=2)
        assert answer["text"] == "answered in the webhook reply"
        assert await client.delete_messages(USER_ID, [document["message_id"], answer["message_id"], 999])
    assert bot.deleted(USER_ID, document["message_id"]) and bot.deleted(USER_ID, answer["message_id"])
    assert received.empty() and [m["text"] for m in bot.messages(USER_ID)] == ["hi"]


async def test_bots_are_separate(telegram: FakeTelegram, bot: FakeBot) -> None:
    other = telegram.add_bot(username="other_bot")
    await bot.user_sends(USER_ID, "to the first bot")
    async with ptb_bot(telegram, other) as client:
        assert (await client.get_me()).username == "other_bot"
        assert await client.get_updates() == ()
        with pytest.raises(Forbidden, match="can't initiate conversation"):  # the user never wrote to it
            await client.send_message(USER_ID, "hello?")
    assert len(bot.pending_updates) == 1 and other.calls_to("getMe") and not bot.calls_to("getMe")


# -- model provider -------------------------------------------------------------------------------------------
OPENAI_KEY = "sk-proj-fakeFAKEfake0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-fakeFAKEfake0123456789"
# what the SDKs send besides the body (openai-python / anthropic-sdk-python, async clients)
OPENAI_HEADERS = {"Authorization": f"Bearer {OPENAI_KEY}", "Content-Type": "application/json",
                  "Accept": "application/json", "User-Agent": "AsyncOpenAI/Python 1.99.0",
                  "X-Stainless-Lang": "python", "X-Stainless-Async": "async:asyncio"}
ANTHROPIC_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01",
                     "Content-Type": "application/json", "Accept": "application/json",
                     "User-Agent": "AsyncAnthropic/Python 0.60.0", "X-Stainless-Lang": "python"}


@pytest.fixture
async def model() -> AsyncIterator[FakeModel]:
    async with FakeModel() as fake:
        yield fake


async def sse_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(event, data) pairs, decoded line by line as the SDKs' SSEDecoder does."""
    events, event, data = [], None, []
    async for line in response.aiter_lines():
        if not line:
            if event or data:
                events.append((event, "\n".join(data)))
            event, data = None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
    return events


async def test_openai_chat_completions_plain_and_streamed(model: FakeModel) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "be brief"},
                                                 {"role": "user", "content": [{"type": "text", "text": "ping"}]}]}
    async with httpx.AsyncClient(base_url=f"{model.url}/v1", headers=OPENAI_HEADERS) as http:
        plain = (await http.post("/chat/completions", json=body)).json()
        assert plain["object"] == "chat.completion" and plain["model"] == "gpt-4o-mini"
        assert plain["choices"][0]["message"] == {
            "role": "assistant", "content": "fake reply to: ping", "refusal": None}
        assert plain["choices"][0]["finish_reason"] == "stop" and plain["usage"]["total_tokens"] > 0
        model.reply = "Hello there, streamed"
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        async with http.stream("POST", "/chat/completions", json=streamed) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = await sse_events(response)
    assert events[-1] == (None, "[DONE]") and all(event is None for event, _ in events)
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello there, streamed"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert [r.api_key for r in model.requests] == [OPENAI_KEY, OPENAI_KEY]
    assert model.requests[1].stream and model.requests[1].model == "gpt-4o-mini"
    assert model.requests[0].headers["x-stainless-lang"] == "python"


async def test_openai_responses_plain_and_streamed(model: FakeModel) -> None:
    """OpenClaw's "openai-responses" adapter (the project's OpenAI provider) uses this API."""
    body = {"model": "gpt-5.5", "instructions": "be brief", "store": False,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "ping"}]}]}
    async with httpx.AsyncClient(base_url=f"{model.url}/v1", headers=OPENAI_HEADERS) as http:
        plain = (await http.post("/responses", json=body)).json()
        assert (plain["object"], plain["status"], plain["model"]) == ("response", "completed", "gpt-5.5")
        assert plain["output"][0]["content"][0] == {"type": "output_text", "annotations": [], "logprobs": [],
                                                    "text": "fake reply to: ping"}
        async with http.stream("POST", "/responses", json={**body, "stream": True}) as response:
            events = await sse_events(response)
        unknown = await http.post("/embeddings", json={})
    payloads = [json.loads(data) for _, data in events]
    assert [event for event, _ in events] == [p["type"] for p in payloads]  # event name == data type
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert payloads[0]["type"] == "response.created" and payloads[-1]["type"] == "response.completed"
    deltas = "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")
    assert deltas == "fake reply to: ping" == payloads[-1]["response"]["output"][0]["content"][0]["text"]
    assert payloads[-1]["response"]["usage"]["total_tokens"] > 0
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "Invalid URL (POST /v1/embeddings)"
    assert [r.path for r in model.requests] == ["/v1/responses", "/v1/responses", "/v1/embeddings"]


def test_the_reply_sees_what_the_human_wrote_not_the_agent_s_framing() -> None:
    """OpenClaw wraps the user's words (a metadata envelope, then a context-only user item)."""
    body = {"model": "gpt-5.5", "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "system prompt"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text":
            "[Tue 2026-11-24 00:01 UTC] Conversation info: \u27e6openclaw:ctx\u27e7\n"
            '```json\n{"sender":{"id":"1"}}\n```\n\nping from the test'}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text":
            "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nActive exec sessions: none\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"}]},
    ]}
    request = ModelRequest("openai", "POST", "/v1/responses", {}, body, "sk-x")
    assert request.user_text == "ping from the test"
    assert request.last_user_text.startswith("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>")
    plain = ModelRequest("openai", "POST", "/v1/chat/completions", {}, {"messages": [
        {"role": "user", "content": "[not a timestamp] hi"}]}, "sk-x")
    assert plain.user_text == plain.last_user_text == "[not a timestamp] hi"


async def test_anthropic_messages_plain_and_streamed(model: FakeModel) -> None:
    model.reply = lambda text: f"Claude-ish answer to {text!r}"
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "be brief",
            "messages": [{"role": "user", "content": "hello"}]}
    async with httpx.AsyncClient(base_url=model.url, headers=ANTHROPIC_HEADERS) as http:
        plain = (await http.post("/v1/messages", json=body)).json()
        assert plain["type"] == "message" and plain["role"] == "assistant" and plain["stop_reason"] == "end_turn"
        assert plain["content"] == [{"type": "text", "text": "Claude-ish answer to 'hello'"}]
        async with http.stream("POST", "/v1/messages", json={**body, "stream": True},
                               headers={"X-Stainless-Helper-Method": "stream"}) as response:
            events = await sse_events(response)
    names = [event for event, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    for event, data in events:
        assert json.loads(data)["type"] == event  # each data payload names its own event
    deltas = [json.loads(data)["delta"] for event, data in events if event == "content_block_delta"]
    assert "".join(d["text"] for d in deltas) == "Claude-ish answer to 'hello'"
    assert {d["type"] for d in deltas} == {"text_delta"}
    assert json.loads(events[-2][1])["delta"]["stop_reason"] == "end_turn"
    assert json.loads(events[0][1])["message"]["model"] == "claude-sonnet-4-5"
    assert [r.api_key for r in model.requests] == [ANTHROPIC_KEY, ANTHROPIC_KEY]


async def test_wrong_keys_get_each_provider_s_401(model: FakeModel) -> None:
    model.expected_api_key = "the-right-key"
    async with httpx.AsyncClient(base_url=model.url) as http:
        openai = await http.post("/chat/completions", headers=OPENAI_HEADERS, json={"model": "m", "messages": []})
        assert openai.status_code == 401
        error = openai.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert OPENAI_KEY not in error["message"]  # masked, as OpenAI does
        anthropic = await http.post("/v1/messages", headers=ANTHROPIC_HEADERS,
                                    json={"model": "m", "max_tokens": 5, "messages": []})
        assert anthropic.status_code == 401
        assert anthropic.json()["type"] == "error" and anthropic.json()["error"] == {
            "type": "authentication_error", "message": "invalid x-api-key"}
        keyless = await http.post("/v1/chat/completions", json={"model": "m", "messages": []})
        assert keyless.status_code == 401 and "didn't provide an API key" in keyless.json()["error"]["message"]
    assert [r.status for r in model.requests] == [401, 401, 401]


async def aiohttp_sse(response: aiohttp.ClientResponse) -> list[tuple[str | None, JsonValue]]:
    events, event, data = [], None, []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                joined = "\n".join(data)
                events.append((event, joined if joined == "[DONE]" else json.loads(joined)))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


async def test_aiohttp_clients_without_v1_and_expected_key() -> None:
    async with FakeModel(expected_key=ANTHROPIC_KEY) as model, aiohttp.ClientSession(model.url) as http:
        body = {"model": "claude-haiku-4-5", "max_tokens": 64, "stream": True,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hey"}]}]}
        async with http.post("/messages", json=body, headers=ANTHROPIC_HEADERS) as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            events = await aiohttp_sse(response)
        assert [e for e, _ in events][-1] == "message_stop"
        assert "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta") == "fake reply to: hey"
        wrong = {**ANTHROPIC_HEADERS, "x-api-key": "sk-ant-wrong"}
        async with http.post("/messages", json=body, headers=wrong) as response:
            assert response.status == 401 and (await response.json())["error"]["type"] == "authentication_error"
        model.expected_key = OPENAI_KEY
        chat = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "yo"}]}
        async with http.post("/chat/completions", json=chat, headers=OPENAI_HEADERS) as response:
            events = await aiohttp_sse(response)
        assert events[-1] == (None, "[DONE]")
        assert "".join(d["choices"][0]["delta"].get("content") or "" for _, d in events[:-1]) == "fake reply to: yo"
        async with http.post("/responses", json={"model": "gpt-5.5", "input": "yo"}, headers=OPENAI_HEADERS) as r:
            assert (await r.json())["output"][0]["content"][0]["text"] == "fake reply to: yo"
    recorded: RecordedRequest = model.requests[0]
    assert (recorded.path, recorded.api_key, recorded.model, recorded.stream) == (
        "/messages", ANTHROPIC_KEY, "claude-haiku-4-5", True)
    assert [r.status for r in model.requests] == [200, 401, 200, 200]


async def test_failures_delays_and_model_lists(model: FakeModel) -> None:
    model.fail_next(500)
    model.delay_s = 0.05
    async with httpx.AsyncClient(base_url=model.url) as http:
        failed = await http.post("/v1/messages", headers=ANTHROPIC_HEADERS,
                                 json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
        assert failed.status_code == 500 and failed.json()["error"]["type"] == "api_error"
        openai_models = (await http.get("/v1/models", headers=OPENAI_HEADERS)).json()
        assert openai_models["object"] == "list" and openai_models["data"][0]["object"] == "model"
        anthropic_models = (await http.get("/v1/models", headers=ANTHROPIC_HEADERS)).json()
        assert anthropic_models["has_more"] is False and anthropic_models["data"][0]["type"] == "model"
        missing = await http.get("/v1/models/gpt-nonexistent", headers=OPENAI_HEADERS)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    request = await model.wait_for_request(lambda r: r.path == "/v1/models" and r.style == "anthropic", timeout=1)
    assert request.api_key == ANTHROPIC_KEY
