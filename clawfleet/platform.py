"""The composition root: settings in, the running platform out.

Each resource is opened and closed by a small context manager of its own, entered in this
order and closed in the reverse one: the database, the key ring, the HTTP client, the runtime,
the lifecycle manager, the reconciler, the resource sampler, the bot. The metrics' registry is
made first and handed to every layer that records into it. Accounts and the instance service hold nothing
to close. The web app is made last, over what is already open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accounts.access import AccessPolicy
from admin.audit_search import AuditSearch
from admin.broadcast_sender import BroadcastSender, SenderConfig
from admin.broadcasts import Broadcasts
from admin.directory import Directory
from admin.operators import Operators
from admin.requests import AdminRequests
from admin.suspensions import Suspensions
from admin.tools import AdminTools
from accounts.account_links import AccountLinks
from accounts.delivery import Delivery
from accounts.invites import Invites
from accounts.login_links import LoginLinks
from accounts.refusals import Refusals
from accounts.telegram_entry import TelegramEntry
from accounts.users import Accounts
from billing.effects import EffectHandlers
from billing.entitlements import PlanEntitlements
from billing.outbox import Handler, OutboxWorker
from billing.overage import LEASE_NAME as OVERAGE_LEASE
from billing.overage import MeterEvents, OverageReporter
from billing.service import Billing
from billing.stripe_client import StripeApi
from billing.sync import SYNC_LEASE
from bot.application import ProvisioningBot
from bot.context import BotServices
from clawfleet.configs import (
    access_config,
    billing_config,
    bot_config,
    mail_config,
    keeper_config,
    manager_config,
    memory_watch_config,
    model_gateway_config,
    operator_defaults,
    outbox_config,
    reconciler_config,
    retention_config,
    s3_config,
    schedule_config,
    service_config,
    stripe_config,
    throttle_config,
    web_config,
)
from clawfleet.runtime import open_runtime
from clawfleet.settings import Settings
from db.engine import create_engine, create_session_factory
from db.keyfile import load_keyring
from db.leases import every_as_singleton
from db.sealing import KeyRing
from metrics import Metrics
from model_gateway.caps import SpendCaps
from model_gateway.prices import load_prices
from model_gateway.reports import UsageReports
from model_gateway.routes import Routes
from model_gateway.server import ModelGateway, running_model_gateway, upstream_session_options
from model_gateway.usage_book import UsageBook
from provisioner.entitlements import Entitlements
from provisioner.instance_backups.gauges import BackupGauges
from provisioner.instance_backups.keeper import BackupKeeper
from provisioner.instance_backups.s3 import S3Store, S3Unusable, open_s3_store
from provisioner.instance_backups.schedule import LEASE_NAME as BACKUP_SCHEDULE_LEASE
from provisioner.instance_backups.schedule import BackupSchedule
from provisioner.instance_backups.service import InstanceBackups
from provisioner.instance_backups.store import LocalStore
from provisioner.manager import InstanceManager
from provisioner.memory_watch import MemoryWatch
from provisioner.notify import Notifier, NullNotifier
from provisioner.reconcile.reconciler import Reconciler
from provisioner.resources.fleet_gauges import FleetGauges
from provisioner.resources.history import ResourceHistory
from provisioner.resources.sampler import LEASE_NAME as SAMPLER_LEASE
from provisioner.resources.sampler import ResourceSampler
from provisioner.retention import LEASE_NAME as RETENTION_LEASE
from provisioner.retention import Retention
from provisioner.runtimes.base import Runtime
from provisioner.service import InstanceService
from web.app import create_app
from web.proxy import ReverseProxy, client_session_options
from web.services import WebServices

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Platform:
    """Everything one process runs, opened."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    runtime: Runtime
    accounts: Accounts
    invites: Invites
    login_links: LoginLinks
    access: AccessPolicy
    manager: InstanceManager
    instances: InstanceService
    reconciler: Reconciler | None  # None while no runtime can run gateways here
    bot: ProvisioningBot | None  # None without CLAWFLEET_TELEGRAM_BOT_TOKEN
    account_links: AccountLinks
    proxy: ReverseProxy  # to the gateways, for their owners on the instances' own hosts
    model_gateway: ModelGateway  # between the gateways and their model providers
    billing: Billing | None = None  # None without CLAWFLEET_STRIPE_SECRET_KEY: everything is free
    outbox: OutboxWorker | None = None  # carries out what billing changes cause, and the CLI's suspensions
    metrics: Metrics = field(default_factory=Metrics)  # what every layer records, served at /metrics
    resource_sampler: ResourceSampler | None = None  # None while no runtime can run gateways here
    admin: AdminTools | None = None  # the operator's: the admin section, its API
    backups: InstanceBackups | None = None  # instance backups (each user's OpenClaw state)
    backup_schedule: BackupSchedule | None = None  # None while no runtime can run gateways here


PLATFORM = web.AppKey("platform", Platform)  # on the app build_app returns, for tests and benchmarks


async def build_app(settings: Settings, *, runtime: Runtime | None = None,
                    notifier: Notifier | None = None) -> web.Application:
    """The web app over the whole platform, closed with the app (`web.run_app` takes this
    coroutine). `runtime` and `notifier` replace the ones the settings choose (tests)."""
    stack = AsyncExitStack()
    try:
        platform = await stack.enter_async_context(open_platform(settings, runtime=runtime, notifier=notifier))
        bot_username = platform.bot.application.bot.username if platform.bot is not None else None
        app = create_app(web_services(platform), web_config(settings, bot_username))
    except BaseException:
        await stack.aclose()
        raise
    app[PLATFORM] = platform

    async def close(_app: web.Application) -> None:
        await stack.aclose()

    app.on_cleanup.append(close)
    return app


@asynccontextmanager
async def open_platform(settings: Settings, *, runtime: Runtime | None = None,
                        notifier: Notifier | None = None) -> AsyncIterator[Platform]:
    metrics = Metrics()
    bot = ProvisioningBot(bot_config(settings), metrics) if settings.bot_enabled else None
    if notifier is None and bot is not None:
        notifier = bot.notifier  # made before the bot starts: the manager needs it first
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(open_database(settings.database_url))
        sessions = create_session_factory(engine)
        keyring = load_keyring(settings.data_dir, [key.get_secret_value() for key in settings.secret_keys])
        http = await stack.enter_async_context(aiohttp.ClientSession())
        proxy = ReverseProxy(await stack.enter_async_context(aiohttp.ClientSession(**client_session_options())))
        entitlements = PlanEntitlements(sessions, settings.plans) if settings.billing_enabled \
            else operator_defaults(settings)
        # before the runtime: the egress guard lets instances reach the port it gets
        model_gateway = await stack.enter_async_context(
            open_model_gateway(settings, sessions, keyring, entitlements, notifier or NullNotifier(), metrics))
        runtime = await stack.enter_async_context(open_runtime(settings, runtime, model_gateway.port))

        accounts = Accounts(sessions, throttle_config(settings), read_cache_ttl_s=settings.read_cache_ttl_s)
        invites, login_links = Invites(sessions), LoginLinks(sessions)
        await stack.enter_async_context(purging_expired_tokens(accounts))
        access = AccessPolicy(access_config(settings), invites)
        # links go by the bot only while it runs (a test's notifier aside, which has no chat to send to)
        delivery = Delivery(settings.public_url, mail_config(settings),
                            telegram=notifier.notify if bot is not None else None)
        account_links = await stack.enter_async_context(
            sending_links(AccountLinks(sessions, login_links, delivery, throttle_config(settings))))
        bucket = await stack.enter_async_context(open_backup_bucket(settings))
        keeper = BackupKeeper(sessions, keyring, LocalStore(settings.data_dir / "instance-backups"),
                              keeper_config(settings), bucket, entitlements=entitlements, metrics=metrics)
        manager = await stack.enter_async_context(
            open_manager(InstanceManager(sessions, runtime, keyring, manager_config(settings, model_gateway.port), http,
                                         notifier=notifier, entitlements=entitlements,
                                         warm_up_nonces=model_gateway.warm_ups, metrics=metrics, backups=keeper)))
        instances = InstanceService(sessions, keyring, manager, entitlements, service_config(settings),
                                    http, admission=access)
        backups = InstanceBackups(sessions, instances, manager, keeper)
        reconciler = sampler = schedule = None
        if runtime.unavailable_reason is None:
            reconciler = await stack.enter_async_context(
                running_reconciler(Reconciler(sessions, manager, reconciler_config(settings), http)))
            sampler = ResourceSampler(sessions, runtime, manager.holder)
            await stack.enter_async_context(running(every_as_singleton(
                sessions, SAMPLER_LEASE, sampler.holder, settings.lease_ttl_s, settings.resource_sample_interval_s,
                sampler.run_once, "resource sampling"), "resource-sampler"))
            schedule = BackupSchedule(sessions, manager, keeper, entitlements, schedule_config(settings))
            await stack.enter_async_context(running(every_as_singleton(
                sessions, BACKUP_SCHEDULE_LEASE, schedule.holder, settings.lease_ttl_s, schedule.config.interval_s,
                schedule.run_once, "scheduled instance backups"), "instance-backup-schedule"))
            if settings.memory_restart_percent > 0:
                watch = MemoryWatch(sessions, manager, memory_watch_config(settings), model_gateway.activity.idle_for_s)
                await stack.enter_async_context(running(watch.run(), "memory-watch"))
        metrics.read_at_scrape(FleetGauges(sessions, metrics).read)
        metrics.read_at_scrape(BackupGauges(sessions, metrics).read)
        retention = Retention(sessions, manager, retention_config(settings))
        await stack.enter_async_context(running(every_as_singleton(
            sessions, RETENTION_LEASE, retention.holder, settings.lease_ttl_s, retention.config.interval_s,
            retention.run_once, "data retention"), "retention"))
        suspensions = Suspensions(sessions, instances, notifier or NullNotifier())
        admin_requests = AdminRequests(suspensions).table()  # from the command line, carried out by the outbox
        billing = None
        if settings.billing_enabled:
            billing, outbox = await stack.enter_async_context(
                open_billing(settings, sessions, instances, notifier or NullNotifier(), manager.holder, metrics,
                             admin_requests))
        else:
            outbox = OutboxWorker(sessions, admin_requests, outbox_config(settings), holder=manager.holder)
            await stack.enter_async_context(running(outbox.run(), "outbox"))
        if bot is not None:
            entry = TelegramEntry(accounts, invites, access, Refusals(sessions))
            services = BotServices(accounts, instances, keyring, invites, access, entry,
                                   billing_enabled=settings.billing_enabled, account_links=account_links,
                                   billing=billing, usage=UsageReports(sessions), caps=model_gateway.caps,
                                   backups=backups)
            await stack.enter_async_context(running_bot(bot, services, sessions))
        admin = await stack.enter_async_context(
            open_admin(settings, sessions, login_links, suspensions, notifier, manager.holder, bot is not None))
        yield Platform(engine, sessions, keyring, runtime, accounts, invites, login_links, access, manager,
                       instances, reconciler, bot, account_links, proxy, model_gateway, billing, outbox, metrics,
                       sampler, admin, backups, schedule)


@asynccontextmanager
async def open_backup_bucket(settings: Settings) -> AsyncIterator[S3Store | None]:
    """The bucket instance backups are uploaded to (None without one), checked in the background:
    a bucket that refuses is logged, naming the setting to fix, and the platform runs all the
    same, its backups kept here and uploaded by the schedule once the bucket takes them."""
    config = s3_config(settings)
    if config is None:
        yield None
        return

    async def check(store: S3Store) -> None:
        try:
            await store.check()
        except S3Unusable as exc:
            log.warning("the instance-backup bucket cannot be used; backups stay on this server until it can",
                        reason=str(exc))

    async with open_s3_store(config) as store, running(check(store), "backup-bucket-check"):
        yield store


@asynccontextmanager
async def open_admin(settings: Settings, sessions: async_sessionmaker[AsyncSession], login_links: LoginLinks,
                     suspensions: Suspensions, notifier: Notifier | None, holder: str,
                     bot_running: bool) -> AsyncIterator[AdminTools]:
    """The operator's tools; the broadcast sender while the bot runs (a singleton across
    processes); and, while no admin exists, a new setup link in the log (older ones void)."""
    notifier = notifier or NullNotifier()
    sender = BroadcastSender(sessions, notifier, SenderConfig(lease_ttl_s=settings.lease_ttl_s), holder=holder)
    operators = Operators(sessions, login_links)
    tools = AdminTools(operators, Directory(sessions), AuditSearch(sessions), suspensions,
                       Broadcasts(sessions, wake=sender.wake), bot_running)
    try:
        setup = await operators.setup_link(settings.public_url)
    except (OSError, SQLAlchemyError) as exc:  # the platform starts all the same; /healthz tells the database's state
        log.warning("could not look for an admin: no setup link this time", reason=str(exc).splitlines()[0])
        setup = None
    if setup is not None:  # the one secret the log shows, on purpose: whoever reads it runs the platform
        log.warning("no admin yet: open this one-time link signed in (or sign up through it) to become the "
                    "platform's admin; it works once, until a restart or the time shown", url=setup[0],
                    expires_at=setup[1].expires_at.isoformat(timespec="minutes"))
    async with AsyncExitStack() as stack:
        if bot_running:
            await stack.enter_async_context(running(sender.run(), "broadcast-sender"))
        yield tools


@asynccontextmanager
async def open_billing(settings: Settings, sessions: async_sessionmaker[AsyncSession], instances: InstanceService,
                       notifier: Notifier, holder: str, metrics: Metrics,
                       other_effects: dict[str, Handler]) -> AsyncIterator[tuple[Billing, OutboxWorker]]:
    """Stripe's client, the outbox worker (which carries out `other_effects` too), the periodic
    sync with Stripe and the overage reporter (each a singleton across platform processes),
    closed in reverse."""
    plans = settings.plans
    stripe = StripeApi(stripe_config(settings))
    handlers = EffectHandlers(instances, notifier, plans).table() | \
        MeterEvents(stripe, settings.stripe_meter_event).table() | other_effects
    outbox = OutboxWorker(sessions, handlers, outbox_config(settings), holder=holder)
    billing = Billing(sessions, stripe, billing_config(settings), wake=outbox.wake, metrics=metrics)
    overage = OverageReporter(sessions, plans, wake=outbox.wake)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(stripe.close)
        await stack.enter_async_context(running(outbox.run(), "billing-outbox"))
        await stack.enter_async_context(running(every_as_singleton(
            sessions, SYNC_LEASE, f"{holder}/stripe-sync", settings.lease_ttl_s, settings.stripe_sync_interval_s,
            billing.sync_once, "stripe sync"), "stripe-sync"))
        if any(plan.bills_overage for plan in plans):
            await stack.enter_async_context(running(every_as_singleton(
                sessions, OVERAGE_LEASE, f"{holder}/overage", settings.lease_ttl_s,
                settings.overage_report_interval_s, overage.run_once, "overage report"), "overage-report"))
        yield billing, outbox


def web_services(platform: Platform) -> WebServices:
    bot = platform.bot
    feed = bot.feed if bot is not None and bot.config.mode == "webhook" else None
    return WebServices(platform.accounts, platform.invites, platform.login_links, platform.instances,
                       platform.engine, telegram_updates=feed, account_links=platform.account_links,
                       proxy=platform.proxy, billing=platform.billing, usage=UsageReports(platform.sessions),
                       caps=platform.model_gateway.caps, metrics=platform.metrics,
                       resources=ResourceHistory(platform.sessions), admin=platform.admin, backups=platform.backups)


@asynccontextmanager
async def open_model_gateway(settings: Settings, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing,
                             entitlements: Entitlements, notifier: Notifier,
                             metrics: Metrics) -> AsyncIterator[ModelGateway]:
    """The model gateway's listener over its own client to the providers, with spending caps."""
    routes = Routes(sessions, keyring, dict(settings.provider_urls), read_cache_ttl_s=settings.read_cache_ttl_s,
                    platform_keys=dict(settings.platform_keys))
    book = UsageBook(sessions, load_prices(settings.model_prices_file), metrics=metrics)
    caps = SpendCaps(sessions, book, entitlements, notifier, read_cache_ttl_s=settings.read_cache_ttl_s)
    async with aiohttp.ClientSession(**upstream_session_options()) as http, \
            running_model_gateway(model_gateway_config(settings), routes, book, http, caps) as gateway:
        yield gateway


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_manager(manager: InstanceManager) -> AsyncIterator[InstanceManager]:
    try:
        yield manager
    finally:
        await manager.close()  # cancels the actions still running


@asynccontextmanager
async def running(work: Coroutine[object, object, object], name: str) -> AsyncIterator[None]:
    """A background task for as long as the platform runs, cancelled on the way out."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running_reconciler(reconciler: Reconciler) -> AsyncIterator[Reconciler]:
    task = asyncio.create_task(reconciler.run(), name=f"reconciler:{reconciler.holder}")
    try:
        yield reconciler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def sending_links(links: AccountLinks) -> AsyncIterator[AccountLinks]:
    try:
        yield links
    finally:
        await links.close()  # reset links still on their way go out first


PURGE_INTERVAL_S = 3600


@asynccontextmanager
async def purging_expired_tokens(accounts: Accounts) -> AsyncIterator[None]:
    """At start and every hour: expired tokens and spent login links go (each delete is
    idempotent, so several processes doing it need no lease)."""

    async def purge_forever() -> None:
        while True:
            try:
                gone = await accounts.purge_expired()
                if gone:
                    log.info("purged expired tokens and login links", rows=gone)
            except Exception:  # the database away a moment: next hour
                log.exception("could not purge expired tokens")
            await asyncio.sleep(PURGE_INTERVAL_S)

    task = asyncio.create_task(purge_forever(), name="purge-expired-tokens")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running_bot(bot: ProvisioningBot, services: BotServices,
                      sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[ProvisioningBot]:
    try:
        await bot.start(services, sessions)
    except BaseException:
        await bot.stop()  # whatever had started (the HTTP client, say) is closed again
        raise
    try:
        yield bot
    finally:
        await bot.stop()
