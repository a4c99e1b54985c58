"""Checks a user's Telegram bot token: its shape, then getMe against the Bot API."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp
from pydantic import SecretStr

from db.errors import InvalidInput, Unavailable

FIELD = "telegram_bot_token"
# What @BotFather hands out: the bot's id (up to 20 digits), a colon, then about 35 characters
TOKEN_SHAPE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")  # fullmatch, on at most MAX_TOKEN_LENGTH
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str


def bot_id_of(token: str) -> int | None:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def check_token_shape(token: object) -> str:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not TOKEN_SHAPE.fullmatch(token.strip()):
        raise InvalidInput(
            "That does not look like a Telegram bot token. @BotFather gives one like "
            "123456789:AAH... (digits, a colon, then about 35 letters and digits).",
            field=FIELD,
        )
    return token.strip()


async def fetch_bot_identity(http: aiohttp.ClientSession, api_url: str, token: SecretStr) -> BotIdentity:
    url = f"{api_url}/bot{token.get_secret_value()}/getMe"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        # the exception text would carry the URL, and the URL carries the token
        raise Unavailable("Could not reach Telegram to check the bot token. Please try again.") from None
    if response.status == 401 or (response.status == 404 and not body.get("ok")):
        raise InvalidInput(
            "Telegram does not know this bot token. Copy it again from @BotFather (/mybots → API Token).",
            field=FIELD,
        )
    if not body.get("ok") or not isinstance(body.get("result"), dict):
        raise Unavailable("Telegram could not check the bot token right now. Please try again.")
    result = body["result"]
    return BotIdentity(id=int(result["id"]), username=str(result.get("username", "")))
