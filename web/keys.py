"""Typed keys for what the app holds: each resource is opened and closed by a cleanup context."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clawfleet.settings import Settings
from db.models import User
from db.sealing import KeyRing
from provisioner.assembly import Provisioner

SETTINGS = web.AppKey("settings", Settings)
DB_ENGINE = web.AppKey("db_engine", AsyncEngine)
DB_SESSIONS = web.AppKey("db_sessions", async_sessionmaker[AsyncSession])
KEYRING = web.AppKey("keyring", KeyRing)
PROVISIONER = web.AppKey("provisioner", Provisioner)

# Where Telegram webhook updates go when the provisioning bot runs in webhook mode (set by the
# composition root: the web layer never imports the bot).
TELEGRAM_UPDATES = web.AppKey("telegram_updates", Callable[[Any], Awaitable[None]])

USER = web.RequestKey("user", User)  # the authenticated user, set by web.auth
