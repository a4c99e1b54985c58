"""The instance use cases the bot and the web app both call.

Input is validated here, once, for both front ends: every bad value raises InvalidInput naming
the field, before anything is stored or changed. Every action is written to the audit log.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import audit
from db.errors import (
    CapacityExceeded,
    Conflict,
    InvalidInput,
    LimitReached,
    NotFound,
    Unavailable,
)
from db.leases import lock_for_transaction
from db.models import KEY_OWN, KEY_PLATFORM, Instance, User
from db.read_cache import READ_CACHE_TTL_S, ReadCache
from db.redaction import redacted_lines
from db.sealing import KeyRing, open_from, seal_into
from db.status import ACTIVE, COUNTED, DOING, LOCKED, RUNNING_OR_ASLEEP, SUSPENDED_BY_OPERATOR, Action, Status
from db.types import utcnow
from provisioner.admission import ADMISSION_LOCK, Admission, AdmitAll, StartCheck
from provisioner.entitlements import Allowance, Entitlements, limit_message
from provisioner.instance_urls import InstanceUrls
from provisioner.key_check import key_refused
from provisioner.model_access import issue_credential, revoke_credential
from provisioner.manager import InstanceManager, probe
from provisioner.openclaw.pairing import CODE_LENGTH, normalized_code
from provisioner.progress import ProgressEvent, resume_after
from provisioner.providers import Provider, get_provider
from provisioner.telegram_check import BotIdentity, bot_id_of, check_token_shape, fetch_bot_identity

UNCHANGED = object()
VIEW_TABLES = {Instance.__tablename__, User.__tablename__}  # what an instance's view is read from


@dataclass(frozen=True)
class ServiceConfig:
    telegram_api_url: str
    provisioning_bot_token: SecretStr | None = None
    memory_budget_mb: int = 1 << 30
    public_url: str = "http://localhost:8080"
    instance_domain: str = "localhost"
    provider_check_urls: dict[str, str] = field(default_factory=dict)  # provider id -> a cheap GET
    read_cache_ttl_s: float = READ_CACHE_TTL_S
    platform_key_providers: frozenset[str] = frozenset()  # providers the operator's own keys are offered for


@dataclass
class InstanceChanges:
    """Fields of a config change; anything left UNCHANGED keeps its value."""

    model_provider: Any = UNCHANGED
    model: Any = UNCHANGED
    api_key: Any = UNCHANGED
    telegram_bot_token: Any = UNCHANGED
    telegram_user_id: Any = UNCHANGED


@dataclass(frozen=True)
class ConfigUpdate:
    instance: Instance
    changed: list[str]  # field names whose value changed

    @property
    def restart_required(self) -> bool:
        """A running gateway keeps its old settings until it restarts."""
        return bool(self.changed) and self.instance.status == Status.RUNNING


# Masked by value in an instance's logs, whatever their shape.
SEALED_SECRETS = ("api_key_sealed", "gateway_secret_sealed", "telegram_bot_token_sealed", "model_credential_sealed")


class InstanceService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, manager: InstanceManager,
                 entitlements: Entitlements, config: ServiceConfig, http: aiohttp.ClientSession, *,
                 admission: Admission | None = None) -> None:
        self.sessions = sessions
        self.keyring = keyring
        self.manager = manager
        self.entitlements = entitlements
        self.admission = admission or AdmitAll()
        self.config = config
        self.http = http
        self.views: ReadCache[uuid.UUID, Instance] = ReadCache(sessions, VIEW_TABLES, ttl_s=config.read_cache_ttl_s)
        self.views_by_subdomain: ReadCache[str, Instance] = ReadCache(sessions, VIEW_TABLES,
                                                                      ttl_s=config.read_cache_ttl_s)
        self.urls = InstanceUrls(config.public_url, config.instance_domain)

    # -- queries --------------------------------------------------------------------------
    async def get(self, user: User, instance_id: uuid.UUID | str) -> Instance:
        instance_id = _as_uuid(instance_id)
        return _owned(user, await self._stored(instance_id) if instance_id else None)

    async def view(self, user: User, instance_id: uuid.UUID | str) -> Instance:
        """The instance as `get` reads it, for an answer to show: kept in memory for a moment
        and shared by every reader (read it, never change it). Any write to instances clears
        it (db/read_cache.py), so this process's changes show at once. Decisions use `get`."""
        instance_id = _as_uuid(instance_id)
        return _owned(user, await self.views.get(instance_id, lambda: self._stored(instance_id)) if instance_id else None)

    async def at_subdomain(self, subdomain: str) -> Instance | None:
        """The instance a host names, whoever owns it, as `view` reads it (for the instance's own
        host, which checks the owner itself): every request of a Control UI asks."""
        return await self.views_by_subdomain.get(subdomain, lambda: self._stored_at(subdomain))

    async def _stored(self, instance_id: uuid.UUID) -> Instance | None:
        async with self.sessions() as session:
            return await session.get(Instance, instance_id)

    async def _stored_at(self, subdomain: str) -> Instance | None:
        async with self.sessions() as session:
            return await session.scalar(select(Instance).where(Instance.subdomain == subdomain))

    async def list(self, user: User) -> list[Instance]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Instance).where(Instance.user_id == user.id).order_by(Instance.created_at)
            )
            return list(rows)

    def public_url(self, instance: Instance) -> str:
        return self.urls.url(instance.subdomain)

    # -- create ---------------------------------------------------------------------------
    async def create(self, user: User, *, model_provider: object, api_key: object = None, model: object = None,
                     telegram_bot_token: object = None, telegram_user_id: object = None,
                     use_platform_key: object = False) -> Instance:
        """`use_platform_key`: run on the operator's key for the provider (CLAWFLEET_PLATFORM_KEYS),
        which the owner's plan includes usage of, instead of a key of their own."""
        await self.admission.check(user)
        self.check_runtime()
        provider = _provider(model_provider)
        model_id = _model(provider, model)
        allowance = await self.entitlements.allowance(user)
        if use_platform_key is True:
            self._check_platform_key(provider, allowance)
            key = None
        elif use_platform_key not in (False, None):
            raise InvalidInput("use_platform_key is true or false.", field="use_platform_key")
        else:
            key = await self._checked_key(provider, _api_key(provider, api_key))
        allow_from = _telegram_user_id(telegram_user_id, default=user.telegram_user_id)
        bot = await self._checked_bot(telegram_bot_token) if telegram_bot_token not in (None, "") else None

        async with self.sessions() as session:
            waits = await self._make_room(session, user, allowance)
            if bot is not None:
                await self._check_bot_unused(session, bot[1], None)
            instance = self._new_row(user, allowance, provider.id, model_id, key, allow_from, waits)
            if bot is not None:
                token, identity = bot
                seal_into(self.keyring, instance, "telegram_bot_token_sealed", token)
                instance.telegram_bot_id = identity.id
                instance.telegram_bot_username = identity.username
            holder = None if waits else self.manager.claim(instance)
            session.add(instance)
            audit.record(session, actor="user", action="instance.create", user_id=user.id, instance_id=instance.id,
                         details={"provider": provider.id, "model": model_id, "telegram": bot is not None,
                                  "awaiting_payment": waits, "key": instance.key_source})
            await session.commit()
        if holder is not None:
            await self.manager.deploy(instance.id, holder=holder)
        return instance

    async def create_copy(self, user: User, source: Instance, claim_for: Action) -> tuple[Instance, str]:
        """A new instance of `user` like `source` (provider, model, key, Telegram owner), with
        credentials of its own and no Telegram bot (a bot token serves one instance: its owner
        gives the copy another). Inserted under a lease for `claim_for`: the caller starts it."""
        await self.admission.check(user)
        self.check_runtime()
        allowance = await self.entitlements.allowance(user)
        async with self.sessions() as session:
            if await self._make_room(session, user, allowance):
                raise LimitReached("Your plan is not active: pay for it before restoring into a new assistant.")
            key = open_from(self.keyring, source, "api_key_sealed")
            instance = self._new_row(user, allowance, source.model_provider, source.model, key,
                                     source.telegram_allow_from, False)
            holder = self.manager.claim(instance, claim_for)
            session.add(instance)
            audit.record(session, actor="user", action="instance.create", user_id=user.id, instance_id=instance.id,
                         details={"provider": source.model_provider, "model": source.model, "telegram": False,
                                  "copy_of": str(source.id), "key": instance.key_source})
            await session.commit()
        return instance, holder

    async def _make_room(self, session: AsyncSession, user: User, allowance: Allowance) -> bool:
        """Under the admission lock: refuse an instance beyond the owner's cap, or one that would
        start beyond the memory budget. True when it must wait for payment (not started)."""
        await lock_for_transaction(session, ADMISSION_LOCK)
        owned = await session.scalar(
            select(func.count()).select_from(Instance).where(
                Instance.user_id == user.id, Instance.status.in_(COUNTED)
            )
        )
        if owned >= allowance.max_instances:
            raise LimitReached(limit_message(allowance))
        waits = allowance.payment_required  # stored, not started: billing deploys it once paid
        if not waits:
            await self._check_memory_budget(session, allowance.memory_mb)
        return waits

    def _new_row(self, user: User, allowance: Allowance, provider_id: str, model_id: str, key: SecretStr | None,
                 allow_from: int | None, waits: bool) -> Instance:
        """An instance row with fresh credentials of its own (not yet added)."""
        instance = Instance(
            user_id=user.id,
            status=Status.AWAITING_PAYMENT if waits else Status.PROVISIONING,
            subdomain=_new_subdomain(),
            memory_mb=allowance.memory_mb,
            cpus=allowance.cpus,
            runtime=self.manager.runtime.name,
            runtime_state={},
            model_provider=provider_id,
            model=model_id,
            telegram_allow_from=allow_from,
        )
        seal_into(self.keyring, instance, "api_key_sealed", key)
        instance.key_source = KEY_OWN if key is not None else KEY_PLATFORM
        seal_into(self.keyring, instance, "gateway_secret_sealed", SecretStr(secrets.token_urlsafe(32)))
        issue_credential(self.keyring, instance)
        return instance

    # -- change configuration (applied by the next start or restart) ------------------------
    async def update_config(self, user: User, instance_id: uuid.UUID | str, changes: InstanceChanges) -> ConfigUpdate:
        instance = await self.get(user, instance_id)
        if instance.status == Status.DELETING:
            raise Conflict("This instance is being deleted.")
        provider = _provider(changes.model_provider) if changes.model_provider is not UNCHANGED \
            else get_provider(instance.model_provider)
        if changes.model is not UNCHANGED:
            model_id = _model(provider, changes.model)
        elif changes.model_provider is not UNCHANGED and provider.id != instance.model_provider:
            model_id = provider.default_model
        else:
            model_id = instance.model
        key = await self._checked_key(provider, _api_key(provider, changes.api_key)) \
            if changes.api_key is not UNCHANGED else None
        on_platform_key = instance.key_source == KEY_PLATFORM and provider.id in self.config.platform_key_providers
        if key is None and provider.id != instance.model_provider and not on_platform_key:
            raise InvalidInput(f"Switching to {provider.display_name} needs its API key too.", field="api_key")
        allow_from = _telegram_user_id(changes.telegram_user_id, default=None) \
            if changes.telegram_user_id is not UNCHANGED else instance.telegram_allow_from
        bot = UNCHANGED
        if changes.telegram_bot_token is not UNCHANGED:
            bot = await self._checked_bot(changes.telegram_bot_token) if changes.telegram_bot_token else None

        changed: list[str] = []
        async with self.sessions() as session:
            if bot not in (UNCHANGED, None):
                await lock_for_transaction(session, ADMISSION_LOCK)
            row = await session.get(Instance, instance.id)
            if row.model_provider != provider.id:
                row.model_provider = provider.id
                changed.append("model_provider")
                revoke_credential(row)  # its route now leads to another provider: refused until restarted
            if row.model != model_id:
                row.model = model_id
                changed.append("model")
            if key is not None:
                seal_into(self.keyring, row, "api_key_sealed", key)
                row.key_source = KEY_OWN  # a key of their own replaces the platform's
                changed.append("api_key")
                # The model gateway uses the new key from the next call on; the instance's
                # credential is replaced at its next start (the running one keeps working).
                row.model_credential_sealed = None
            if allow_from != row.telegram_allow_from:
                row.telegram_allow_from = allow_from
                changed.append("telegram_user_id")
            if bot is not UNCHANGED:
                if bot is None:
                    seal_into(self.keyring, row, "telegram_bot_token_sealed", None)
                    row.telegram_bot_id = row.telegram_bot_username = None
                else:
                    await self._check_bot_unused(session, bot[1], row.id)
                    seal_into(self.keyring, row, "telegram_bot_token_sealed", bot[0])
                    row.telegram_bot_id, row.telegram_bot_username = bot[1].id, bot[1].username
                changed.append("telegram_bot_token")
            audit.record(session, actor="user", action="instance.config", user_id=user.id, instance_id=row.id,
                         details={"changed": sorted(changed)})
            await session.commit()
        return ConfigUpdate(row, sorted(changed))

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, user: User, instance_id: uuid.UUID | str) -> Instance:
        instance = await self.actionable(user, instance_id, "start")
        self.check_runtime()
        if instance.status == Status.RUNNING and self.manager.action_in_progress(instance.id) is None:
            raise Conflict("This instance is already running.")
        await self.manager.deploy(instance.id, check=await self.room_to_start(user))
        return await self.audited(user, instance, "instance.start")

    async def stop(self, user: User, instance_id: uuid.UUID | str) -> Instance:
        instance = await self.actionable(user, instance_id, "stop")
        if instance.status == Status.STOPPED:
            raise Conflict("This instance is already stopped.")
        await self.manager.stop(instance.id)
        return await self.audited(user, instance, "instance.stop")

    async def restart(self, user: User, instance_id: uuid.UUID | str) -> Instance:
        instance = await self.actionable(user, instance_id, "restart")
        self.check_runtime()
        await self.manager.restart(instance.id, check=await self.room_to_start(user))
        return await self.audited(user, instance, "instance.restart")

    async def delete(self, user: User, instance_id: uuid.UUID | str, *, purge: bool) -> Instance:
        instance = await self.get(user, instance_id)
        await self.manager.delete(instance.id, keep_data=not purge)
        return await self.audited(user, instance, "instance.delete", {"purge": purge})

    async def delete_all(self, user: User, *, timeout_s: float = 120) -> list[Instance]:
        """Every instance of the user deleted with its data (their account goes next); returns
        once each is gone or its delete has failed (or after `timeout_s`), with those left."""
        for instance in await self.list(user):
            await self.delete(user, instance.id, purge=True)
        left = await self.list(user)
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while any(instance.status == Status.DELETING for instance in left):
                    await asyncio.sleep(0.2)
                    left = await self.list(user)
        return left
    # -- billing's effects (billing.effects calls these once a subscription changed) --------
    async def start_paid(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The owner's subscription pays for running: what waited for payment and what billing
        suspended start again (with their data), oldest first, as many as the plan allows; one an
        operator suspended stays so (admin.suspensions lifts that). Idempotent: what already runs
        or starts is left alone. Returns the instances started now."""
        user = await self._user(user_id)
        if user is None or (await self.entitlements.allowance(user)).payment_required:
            return []
        started = []
        check = await self.room_to_start(user)
        for row in await self.list(user):
            if row.status not in (Status.AWAITING_PAYMENT, Status.SUSPENDED) or row.admin_suspended_at:
                continue
            try:
                await self.manager.deploy(row.id, check=check)
            except LimitReached:
                break  # the plan's places are taken: the rest wait (the owner chooses what to stop)
            await self.audited(user, row, "instance.start_paid", {"was": row.status}, actor="billing")
            started.append(row.id)
        return started

    async def suspend_unpaid(self, user_id: uuid.UUID, reason: str) -> list[uuid.UUID]:
        """The owner's subscription ended: every gateway of theirs stops, `suspended` with `reason`;
        their data stays (the retention worker deletes it later). Idempotent."""
        user = await self._user(user_id)
        if user is None:
            return []
        suspended = []
        for row in await self.list(user):
            if row.status in (Status.AWAITING_PAYMENT, Status.SUSPENDED, Status.DELETING):
                continue
            await self.manager.suspend(row.id, reason)
            await self.audited(user, row, "instance.suspend", {"was": row.status}, actor="billing")
            suspended.append(row.id)
        return suspended

    async def running_of(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """The owner's instances that take a place of their plan's, with a name to show."""
        user = await self._user(user_id)
        rows = await self.list(user) if user is not None else []
        return [(row.id, f"@{row.telegram_bot_username}" if row.telegram_bot_username else row.subdomain)
                for row in rows if row.status in RUNNING_OR_ASLEEP]

    async def _user(self, user_id: uuid.UUID) -> User | None:
        async with self.sessions() as session:
            return await session.get(User, user_id)

    # -- Telegram pairing ---------------------------------------------------------------
    async def approve_pairing(self, user: User, instance_id: uuid.UUID | str, code: object) -> Instance:
        """Approve the pairing code the instance's bot sent someone who messaged it (OpenClaw's DM
        pairing, on while ClawFleet does not know the owner's Telegram id): that sender becomes
        the instance's owner, in the running gateway at once and in the row for every later
        start. Approving the same code again changes nothing."""
        pairing_code = _pairing_code(code)
        instance = await self.get(user, instance_id)
        if instance.telegram_bot_id is None:
            raise Conflict("This assistant has no Telegram bot to pair with: add its bot token first.")
        if instance.status != Status.RUNNING:
            raise Conflict(f"Your assistant is {instance.status}, not running: start it, then message your bot "
                           "again for a new code.")
        if instance.lease_holder and instance.lease_expires_at and instance.lease_expires_at > utcnow():
            raise Conflict(f"This instance is busy: {DOING.get(instance.action, 'another action runs on it')}. "
                           "Try again when it is done.")
        sender = await self.manager.runtime.approve_pairing(instance.id, instance.runtime_state, pairing_code)
        if sender is None:
            raise InvalidInput("No pending request has this code; codes expire after an hour: message your bot "
                               "again for a new one.", field="code")
        async with self.sessions() as session:
            row = await session.get(Instance, instance.id)
            if row is None:
                raise NotFound("No such instance.")
            row.telegram_allow_from = sender
            audit.record(session, actor="user", action="instance.pairing", user_id=user.id, instance_id=row.id,
                         details={"telegram_user_id": sender})
            await session.commit()
            return row

    # -- observation ----------------------------------------------------------------------
    async def health(self, user: User, instance_id: uuid.UUID | str) -> dict[str, Any]:
        instance = await self.get(user, instance_id)
        live = ready = False
        used = None
        if instance.endpoint_url and instance.status == Status.RUNNING:
            live = await probe(self.http, f"{instance.endpoint_url}/healthz")
            ready = live and await probe(self.http, f"{instance.endpoint_url}/readyz")
            use = await self.manager.runtime.sample(instance.id, instance.runtime_state)
            used = use.memory_bytes // (1024 * 1024) if use is not None else None
        return {"status": instance.status, "live": live, "ready": ready, "checked_at": utcnow().isoformat(),
                "memory": {"limit_mb": instance.memory_mb, "used_mb": used}}

    async def logs(self, user: User, instance_id: uuid.UUID | str, *, tail: int, follow: bool) -> AsyncIterator[str]:
        """The gateway's log lines, redacted here whatever the runtime: the one place they leave by."""
        instance = await self.get(user, instance_id)
        own_secrets = [secret.get_secret_value() for column in SEALED_SECRETS
                       if (secret := open_from(self.keyring, instance, column)) is not None]
        return redacted_lines(self.manager.runtime.logs(instance.id, instance.runtime_state, tail, follow),
                              known=own_secrets)

    async def progress(self, user: User, instance_id: uuid.UUID | str, *,
                       last_event_id: str | None = None) -> AsyncIterator[ProgressEvent] | None:
        """The latest action's events (after `last_event_id`, an SSE reconnect's); also after a
        delete removed the row, for its owner. None when no action is recorded."""
        key = _as_uuid(instance_id)
        hub = self.manager.progress
        latest = await hub.latest(key) if key else None
        if latest is None or latest.owner_id != user.id:
            await self.get(user, instance_id)  # 404 unless it is theirs
            return None
        return hub.follow(key, latest.action_seq, after=resume_after(last_event_id, latest.action_seq))

    async def progress_so_far(self, user: User, instance_id: uuid.UUID | str) -> tuple[list[ProgressEvent], bool]:
        """The latest action's events stored so far and whether it is over, without waiting
        (pages without JavaScript); ([], True) when no action is recorded."""
        key = _as_uuid(instance_id)
        hub = self.manager.progress
        latest = await hub.latest(key) if key else None
        if latest is None or latest.owner_id != user.id:
            await self.get(user, instance_id)  # 404 unless it is theirs
            return [], True
        return await hub.stored(key, latest.action_seq)

    # -- checks shared with the use cases built on this one (instance backups) ----------------
    async def actionable(self, user: User, instance_id: uuid.UUID | str, verb: str) -> Instance:
        """The user's instance, unless a lock (payment, suspension, deletion) keeps it from `verb`."""
        instance = await self.get(user, instance_id)
        if instance.status in LOCKED:
            why = SUSPENDED_BY_OPERATOR if instance.admin_suspended_at else LOCKED[Status(instance.status)]
            raise Conflict(f"Cannot {verb} this instance: {why}.")
        return instance

    async def audited(self, user: User, instance: Instance, action: str, details: dict | None = None, *,
                      actor: str = "user") -> Instance:
        """Record `action` in the audit log; the instance as it is now."""
        async with self.sessions() as session:
            audit.record(session, actor=actor, action=action, user_id=user.id, instance_id=instance.id,
                         details=details)
            await session.commit()
            return await session.get(Instance, instance.id) or instance

    def check_runtime(self) -> None:
        """Unavailable when this server's runtime cannot run gateways."""
        reason = self.manager.runtime.unavailable_reason
        if reason:
            raise Unavailable(f"Assistants cannot be started on this server right now ({reason}).")

    async def room_to_start(self, user: User) -> StartCheck:
        """An instance at rest that starts again takes its owner's memory allowance from the budget,
        and one of the places their plan gives to running assistants."""
        allowance = await self.entitlements.allowance(user)

        async def check(session: AsyncSession, row: Instance) -> None:
            if row.status in ACTIVE:
                return
            if allowance.payment_required:
                raise LimitReached("Your assistants run while a subscription pays for them: choose a plan on "
                                   "the billing page (or /billing in the bot) to start it.")
            running = await session.scalar(select(func.count()).select_from(Instance).where(
                Instance.user_id == row.user_id, Instance.id != row.id, Instance.status.in_(RUNNING_OR_ASLEEP)))
            if running >= allowance.max_instances:
                raise LimitReached(f"{limit_message(allowance)} Stop another assistant first.")
            await self._check_memory_budget(session, allowance.memory_mb)

        return check

    async def _check_memory_budget(self, session: AsyncSession, memory_mb: int) -> None:
        """By the limits the gateways are given (recorded on their rows), not by a guess."""
        given = await session.scalar(
            select(func.coalesce(func.sum(func.coalesce(Instance.memory_mb, memory_mb)), 0))
            .where(Instance.status.in_(ACTIVE))
        )
        if given + memory_mb > self.config.memory_budget_mb:
            raise CapacityExceeded(
                f"This server is full: another assistant would need {memory_mb} MB, and {given} MB of its "
                f"memory budget ({self.config.memory_budget_mb} MB) are given already. Please try again later."
            )

    async def offers_platform_key(self, user: User, provider_id: str) -> bool:
        """Whether this user may run an assistant of this provider on the operator's key."""
        if provider_id not in self.config.platform_key_providers:
            return False
        return bool((await self.entitlements.allowance(user)).included_usage_usd)

    def _check_platform_key(self, provider: Provider, allowance: Allowance) -> None:
        if provider.id not in self.config.platform_key_providers:
            raise InvalidInput(f"ClawFleet has no key of its own for {provider.display_name}: send your API key.",
                               field="use_platform_key")
        if not allowance.included_usage_usd:
            raise InvalidInput("Your plan includes no model usage on ClawFleet's key: send your own API key, or "
                               "choose a plan that includes usage.", field="use_platform_key")

    async def check_api_key(self, provider_id: object, key: object) -> SecretStr:
        """The key, once its shape fits the provider and (when a check URL is configured) the
        provider does not refuse it; InvalidInput saying what is wrong otherwise."""
        provider = _provider(provider_id)
        return await self._checked_key(provider, _api_key(provider, key))

    async def _checked_key(self, provider: Provider, key: SecretStr) -> SecretStr:
        url = self.config.provider_check_urls.get(provider.id)
        problem = await key_refused(self.http, provider, url, key) if url else None
        if problem:
            raise InvalidInput(problem, field="api_key")
        return key

    async def check_bot_token(self, token: object, *, for_instance: uuid.UUID | None = None) -> BotIdentity:
        """The bot behind a token, from getMe; refused when it is ClawFleet's own bot or already
        serves another instance. Nothing is stored: front ends check before they go on."""
        _, identity = await self._checked_bot(token)
        async with self.sessions() as session:
            await self._check_bot_unused(session, identity, for_instance)
        return identity

    async def _checked_bot(self, token: object):
        text = check_token_shape(token)
        if self.config.provisioning_bot_token is not None and \
                bot_id_of(text) == bot_id_of(self.config.provisioning_bot_token.get_secret_value()):
            raise InvalidInput("That is ClawFleet's own bot token. Create your own bot with @BotFather "
                               "and send its token.", field="telegram_bot_token")
        secret = SecretStr(text)
        identity = await fetch_bot_identity(self.http, self.config.telegram_api_url, secret)
        return secret, identity

    async def _check_bot_unused(self, session: AsyncSession, identity, own_id: uuid.UUID | None) -> None:
        holder = await session.scalar(select(Instance.id).where(Instance.telegram_bot_id == identity.id))
        if holder is not None and holder != own_id:
            raise Conflict(f"The bot @{identity.username} already serves another assistant. "
                               "Create a new bot with @BotFather for this one.", field="telegram_bot_token")


def _owned(user: User, instance: Instance | None) -> Instance:
    """The instance if it is the user's; another's answers as one that does not exist."""
    if instance is None or instance.user_id != user.id:
        raise NotFound("No such instance.")
    return instance


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _new_subdomain() -> str:
    return "claw-" + secrets.token_hex(5)


def _provider(value: object) -> Provider:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Choose a model provider.", field="model_provider")
    try:
        return get_provider(value.strip())
    except ValueError as exc:
        raise InvalidInput(str(exc), field="model_provider") from None


def _model(provider: Provider, value: object) -> str:
    if value in (None, ""):
        return provider.default_model
    if not isinstance(value, str) or value.strip() not in provider.models:
        offered = ", ".join(provider.models)
        raise InvalidInput(f"{provider.display_name} offers these models: {offered}.", field="model")
    return value.strip()


def _api_key(provider: Provider, value: object) -> SecretStr:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"Send your {provider.display_name} API key.", field="api_key")
    problem = provider.check_key_shape(value.strip())
    if problem:
        raise InvalidInput(problem, field="api_key")
    return SecretStr(value.strip())


def _pairing_code(value: object) -> str:
    code = normalized_code(value)
    if code is None:
        raise InvalidInput(f"A pairing code is the {CODE_LENGTH} letters and digits your bot sent "
                           "(no 0, O, 1 or I), e.g. HX7K2MQP.", field="code")
    return code


MAX_TELEGRAM_ID = 2**63 - 1  # Telegram's ids fit a signed 64-bit integer, as the column does


def _telegram_user_id(value: object, *, default: int | None) -> int | None:
    """A positive whole number, or its ASCII digits: not a bool, a float, "²" (a digit to
    str.isdigit, but not to int) or anything beyond 64 bits."""
    if value in (None, ""):
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= len(str(MAX_TELEGRAM_ID)):
        value = int(value)
    if type(value) is not int or not 0 < value <= MAX_TELEGRAM_ID:
        raise InvalidInput("telegram_user_id must be your numeric Telegram user id (e.g. 123456789).",
                           field="telegram_user_id")
    return value
