"""Typed keys for what the app holds: each resource is opened and closed by a cleanup context."""

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

USER = web.RequestKey("user", User)  # the authenticated user, set by web.auth
