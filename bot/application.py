"""The provisioning bot's python-telegram-bot Application: built, started and stopped with the
platform, in its event loop. Long polling (under a singleton lease: Telegram serves one
getUpdates consumer per bot) or webhook updates fed in by the web app."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, ContextTypes, Defaults
from telegram.warnings import PTBUserWarning

from bot.backups import backup_handlers
from bot.billing import billing_handlers
from bot.changes import changes_handler
from bot.context import SERVICES, BotContext, BotServices
from bot.gate import GATE_GROUP, gate_handler
from bot.links import link_handlers
from bot.management import COMMANDS, management_handlers
from bot.notifier import TelegramNotifier
from bot.onboarding import onboarding_handler
from bot.pacing import TelegramPacing
from bot.persistence import DatabasePersistence
from bot.update_order import PerChatUpdateProcessor
from bot.update_counts import COUNT_GROUP, counting_handler
from bot.usage import usage_handlers
from db.errors import InvalidInput
from db.leases import LeaseLost, LeaseNotTaken, NamedLease, hold
from metrics import Metrics

log = structlog.get_logger(__name__)

POLLING_LEASE = "telegram-polling"


@dataclass(frozen=True)
class BotConfig:
    token: SecretStr
    api_url: str
    mode: str = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    conversation_timeout_s: float = 15 * 60  # an abandoned setup forgets what it was sent
    lease_ttl_s: float = 30
    persistence_interval_s: float = 1
    pacing: bool = True  # off: calls go out unpaced, for a Bot API without flood limits (a test's fake)


class ProvisioningBot:
    def __init__(self, config: BotConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()  # the platform's; a registry of its own otherwise (unscraped)
        self.notifier = TelegramNotifier()
        self.application: Application | None = None
        self.holder = f"bot-{uuid.uuid4().hex[:12]}"
        self._polling: asyncio.Task[None] | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    def _build(self, services: BotServices, sessions: async_sessionmaker[AsyncSession]) -> Application:
        builder = (
            Application.builder()
            .token(self.config.token.get_secret_value())
            .base_url(f"{self.config.api_url}/bot")
            .base_file_url(f"{self.config.api_url}/file/bot")
            .persistence(DatabasePersistence(sessions, self.config.persistence_interval_s))
            .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
            .concurrent_updates(PerChatUpdateProcessor())
            .context_types(ContextTypes(context=BotContext))
        )
        if self.config.pacing:
            builder = builder.rate_limiter(TelegramPacing())  # Telegram's pace; a 429 is waited out, then retried
        if self.config.mode == "webhook":
            builder = builder.updater(None)  # updates arrive through the web app
        application = builder.build()
        application.bot_data[SERVICES] = services
        application.add_handler(counting_handler(self.metrics), group=COUNT_GROUP)
        application.add_handler(gate_handler(), group=GATE_GROUP)
        application.add_handlers(link_handlers())  # before onboarding's /start
        with warnings.catch_warnings():
            # Our conversations mix buttons and typed answers, so they track per chat and user,
            # not per message: python-telegram-bot warns about exactly that choice.
            warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
            application.add_handler(onboarding_handler(self.config.conversation_timeout_s))
            application.add_handler(changes_handler(self.config.conversation_timeout_s))
        application.add_handlers(billing_handlers())  # before management's placeholder /billing
        application.add_handlers(usage_handlers())
        application.add_handlers(backup_handlers())
        application.add_handlers(management_handlers())
        application.add_error_handler(_on_error)
        return application

    async def start(self, services: BotServices, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.application = application = self._build(services, sessions)
        await application.initialize()
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
        await application.start()
        if self.config.mode == "webhook":
            await application.bot.set_webhook(
                self.config.webhook_url, secret_token=self.config.webhook_secret.get_secret_value(),
                allowed_updates=Update.ALL_TYPES)
        else:
            self._polling = asyncio.create_task(self._poll_while_leased(), name="telegram-polling")
        self.notifier.attach(application.bot, sessions, services.instances)
        log.info("provisioning bot started", username=application.bot.username, mode=self.config.mode)

    async def stop(self) -> None:
        await self.notifier.close()
        if self._polling is not None:
            self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        application = self.application
        if application is None:
            return
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()  # also writes the persistence one last time
        await application.shutdown()

    async def feed(self, data: Any) -> None:
        """One update from the webhook, into the same queue polling fills; InvalidInput, naming
        the update's kind, for a body that does not read as one."""
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception:  # a missing field, a wrong type, a date out of range: the sender's doing
            kind = next((key for key in data if key != "update_id"), "update_id")
            raise InvalidInput(f"This is not a Telegram update: {kind} does not read as one.", field=kind) from None
        await self.application.update_queue.put(update)

    async def _poll_while_leased(self) -> None:
        """Poll while this process holds the polling lease; another replica takes over when it dies."""
        lease = NamedLease(POLLING_LEASE, self.holder)
        while True:
            try:
                await hold(self._sessions, lease, self.config.lease_ttl_s, self._poll)
            except (LeaseNotTaken, LeaseLost):
                pass  # another replica polls
            except Exception:
                log.exception("polling stopped; trying again")
            await asyncio.sleep(self.config.lease_ttl_s / 3)

    async def _poll(self) -> None:
        updater = self.application.updater
        await updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=5)
        log.info("polling Telegram: this process holds the polling lease", holder=self.holder)
        try:
            await asyncio.Event().wait()  # until the lease goes or the bot stops
        finally:
            if updater.running:
                await updater.stop()


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One error handler: a blocked user is not an error; anything else is logged (redacted) and
    the user hears that it was our fault, so no conversation is left hanging in silence."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("a user blocked the bot")
        return
    log.error("bot handler failed", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await update.effective_chat.send_message("Something went wrong on our side. Please try again.")
        except TelegramError:
            pass
