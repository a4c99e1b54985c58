"""The provider key an instance's model calls go out with, as the platform's model gateway
finds it: from the route and credential its gateway was launched with (the key itself never
reaches the gateway)."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clawfleet.settings import Settings
from db.keyfile import load_keyring
from db.sealing import KeyRing
from model_gateway.routes import Routes
from provisioner.runtimes.base import LaunchRequest


async def key_sent_for(sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, launch: LaunchRequest,
                       platform_keys: dict[str, SecretStr] | None = None) -> str:
    routes = Routes(sessions, keyring, {}, read_cache_ttl_s=0, platform_keys=platform_keys)
    route = await routes.resolve(launch.instance_id, launch.model_credential.get_secret_value())
    assert route is not None, "the launch's credential opens no route on the model gateway"
    return route.key.get_secret_value()


def keyring_of(settings: Settings) -> KeyRing:
    """The key ring a platform of these settings opens (its data dir's generated key, or the given ones)."""
    return load_keyring(settings.data_dir, [key.get_secret_value() for key in settings.secret_keys])
