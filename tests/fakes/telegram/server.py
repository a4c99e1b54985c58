"""FakeTelegram: the HTTP server on 127.0.0.1 that routes /bot<token>/<method> and file downloads to
its bots, and knows the users they talk to."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.telegram.bot import FakeBot
from tests.fakes.telegram.flood import FloodControl, FloodLimits
from tests.fakes.telegram.params import read_params
from tests.fakes.telegram.protocol import (
    LOOPBACK,
    NOT_FOUND,
    UNAUTHORIZED,
    BotApiError,
    UserRef,
)
from tests.fakes.telegram.records import FakeUser
from tests.fakes.telegram.state import random_text

_API_PATH = re.compile(r"/bot([^/]*)/([^/]*)")
_FILE_PATH = re.compile(r"/file/bot([^/]*)/(.+)")
_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")


class FakeTelegram:
    """The fake Bot API server; `async with FakeTelegram() as fake:` starts it on a free port.

    `fake.api_url` is the Bot API root (http://127.0.0.1:PORT): python-telegram-bot takes
    `base_url=f"{api_url}/bot"`, OpenClaw `channels.telegram.apiRoot=api_url`."""

    def __init__(self, *, webhook_retry_s: float = 0.2, max_long_poll_s: int = 50) -> None:
        self.webhook_retry_s = webhook_retry_s
        self.max_long_poll_s = max_long_poll_s
        self.users: dict[int, FakeUser] = {}
        self.accepted: dict[str, Any] = {}  # methods every bot answers without implementing them
        self.closing = False
        self._bots: dict[str, FakeBot] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._port: int | None = None

    @property
    def api_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started: use `async with FakeTelegram() as fake`")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def bots(self) -> list[FakeBot]:
        return list(self._bots.values())

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)  # Telegram takes uploads up to 50 MB
        app.router.add_route("*", "/{tail:.*}", self._serve)
        # no access log: request paths carry bot tokens
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self.closing = True
        for bot in self._bots.values():
            bot._changed.notify()  # pending long polls answer at once
            await bot._stop_webhook_delivery()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_bot(self, token: str | None = None, username: str | None = None,
                first_name: str | None = None, *, flood_limits: FloodLimits | None = None) -> FakeBot:
        """A new bot; without a token, one shaped like BotFather's (`<id>:AA<33 more>`). With
        `flood_limits`, its messages are held to them as Telegram does (429 beyond them)."""
        if token is None:
            bot_id = random.randint(7 * 10**9, 8 * 10**9 - 1)
            token = f"{bot_id}:AA{random_text(33)}"
        elif not _TOKEN_SHAPE.fullmatch(token):
            raise ValueError("a bot token looks like 123456789:AA... (digits, a colon, letters)")
        if token in self._bots:
            raise ValueError("that token already belongs to a bot of this fake")
        bot_id = int(token.split(":", 1)[0])
        number = len(self._bots) + 1
        username = username or f"fake{number}_bot"
        bot = FakeBot(self, token, bot_id, username, first_name or f"Fake Bot {number}")
        bot.flood_control = FloodControl(flood_limits) if flood_limits else None
        self._bots[token] = bot
        return bot

    def user(self, user_id: int | None = None, first_name: str = "User", username: str | None = None, *,
             last_name: str | None = None, language_code: str | None = "en") -> FakeUser:
        """A user by id; the first call for an id creates it, later calls return the same user."""
        if user_id is not None and user_id in self.users:
            return self.users[user_id]
        while user_id is None or user_id in self.users:
            user_id = random.randint(10**8, 7 * 10**9)
        user = FakeUser(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        return user

    def accept(self, method: str, result: Any = True) -> None:
        """Every bot answers `method` (unimplemented here) with `result`, recording the call."""
        self.accepted[method.lower()] = result

    def _resolve_user(self, user: UserRef) -> FakeUser:
        if isinstance(user, FakeUser):
            self.users.setdefault(user.id, user)
            return user
        if isinstance(user, Mapping):  # a Telegram User object
            if user.get("is_bot"):
                raise ValueError("bots do not write to bots in the fake Bot API")
            return self.user(int(user["id"]), user.get("first_name") or "User", user.get("username"),
                             last_name=user.get("last_name"), language_code=user.get("language_code"))
        return self.user(int(user))

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        api = _API_PATH.fullmatch(request.path)
        if api is None:
            downloaded = _FILE_PATH.fullmatch(request.path)
            if downloaded and request.method == "GET":
                return self._download(*downloaded.groups())
            return _error_response(BotApiError(404, NOT_FOUND))
        token, method = api.groups()
        if not _TOKEN_SHAPE.fullmatch(token):
            return _error_response(BotApiError(404, NOT_FOUND))  # malformed tokens: 404, as Telegram
        bot = self._bots.get(token)
        if bot is None or bot.revoked:
            return _error_response(BotApiError(401, UNAUTHORIZED))
        try:
            values, uploads = await read_params(request)
        except BotApiError as error:
            return _error_response(error)
        record = await bot.call(method, values, uploads, request.method)
        return web.json_response(record.response, status=record.status)

    def _download(self, token: str, file_path: str) -> web.Response:
        bot = self._bots.get(token)
        stored = next((f for f in bot.files.values() if f.file_path == file_path), None) if bot else None
        if stored is None or (bot and bot.revoked):
            return _error_response(BotApiError(404, NOT_FOUND))
        return web.Response(body=stored.data, content_type="application/octet-stream")


def _error_response(error: BotApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.error_code)
