"""Which instance a request to the model gateway comes from, and where it goes: its route's
instance, checked against the credential presented, its owner, provider, and the real key.

An instance's row is read once and kept for a moment (db.read_cache: a write to it in this
process, a revoked credential or a new key say, is seen by the very next request); the sealed
key is opened for each request and never kept in the clear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import KEY_PLATFORM, Instance
from db.read_cache import ReadCache
from db.sealing import KeyRing, SealedSecretError, associated_data
from provisioner.model_access import credential_matches
from provisioner.providers import Provider, get_provider


@dataclass(frozen=True)
class _Row:
    credential_hash: str | None
    user_id: uuid.UUID
    provider: str
    key_source: str
    api_key_sealed: str | None


@dataclass(frozen=True)
class Route:
    """Where one request goes."""

    instance_id: uuid.UUID
    user_id: uuid.UUID
    provider: Provider
    upstream: str  # the provider's base URL, no trailing slash
    key: SecretStr
    key_source: str  # KEY_OWN or KEY_PLATFORM


class Routes:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing,
                 provider_urls: dict[str, str], read_cache_ttl_s: float = 2.0,
                 platform_keys: dict[str, SecretStr] | None = None) -> None:
        self.sessions = sessions
        self.keyring = keyring
        self.provider_urls = provider_urls
        self.platform_keys = platform_keys or {}  # provider id -> the operator's key
        self._rows: ReadCache[uuid.UUID, _Row] = ReadCache(sessions, {"instances"}, ttl_s=read_cache_ttl_s)

    async def resolve(self, instance_id: uuid.UUID, credential: str) -> Route | None:
        """The route, when `credential` is this instance's; None otherwise (whatever the reason:
        no such instance, another instance's credential, a revoked one)."""
        row = await self._rows.get(instance_id, lambda: self._load(instance_id))
        if row is None or not credential_matches(credential, row.credential_hash):
            return None
        provider = get_provider(row.provider)
        key = self._key(instance_id, row)
        if key is None:
            return None
        upstream = self.provider_urls.get(provider.id, provider.base_url).rstrip("/")
        return Route(instance_id, row.user_id, provider, upstream, key, row.key_source)

    def _key(self, instance_id: uuid.UUID, row: _Row) -> SecretStr | None:
        if row.key_source == KEY_PLATFORM:
            return self.platform_keys.get(row.provider)  # None once the operator stops offering it
        if row.api_key_sealed is None:
            return None
        try:
            return SecretStr(self.keyring.open(row.api_key_sealed,
                                               associated_data("instances", instance_id, "api_key_sealed")))
        except SealedSecretError:
            return None  # sealed under a key no longer in the ring: as good as no key

    async def _load(self, instance_id: uuid.UUID) -> _Row | None:
        async with self.sessions() as session:
            instance = await session.get(Instance, instance_id)
            if instance is None or instance.model_credential_hash is None:
                return None
            return _Row(instance.model_credential_hash, instance.user_id, instance.model_provider,
                        instance.key_source, instance.api_key_sealed)
