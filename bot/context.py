"""What every handler needs: the platform's services, and the account of whoever wrote."""

from __future__ import annotations

from dataclasses import dataclass

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from accounts.access import AccessPolicy
from accounts.account_links import AccountLinks
from accounts.invites import Invites
from accounts.telegram_entry import TelegramEntry
from accounts.users import Accounts
from billing.service import Billing
from db.models import User
from model_gateway.caps import SpendCaps
from model_gateway.reports import UsageReports
from provisioner.instance_backups.service import InstanceBackups
from db.sealing import KeyRing
from provisioner.service import InstanceService

SERVICES = "clawfleet.services"  # the key in application.bot_data


@dataclass(frozen=True)
class BotServices:
    accounts: Accounts
    instances: InstanceService
    keyring: KeyRing
    invites: Invites
    access: AccessPolicy
    entry: TelegramEntry
    billing_enabled: bool = False
    account_links: AccountLinks | None = None  # Telegram links and /dashboard
    billing: Billing | None = None  # plans, Checkout and the portal; None while billing is off
    usage: UsageReports | None = None  # what the model gateway recorded (/usage); None: no model gateway
    caps: SpendCaps | None = None  # monthly spending caps (/usage cap); None: none enforced here
    backups: InstanceBackups | None = None  # instance backups (/backups); None: off


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """python-telegram-bot's context of one update (shared by every handler it reaches), which
    also carries the sender's account once the gate (bot/gate.py) has let them in."""

    account: User | None = None


def services(context: ContextTypes.DEFAULT_TYPE) -> BotServices:
    return context.bot_data[SERVICES]


def current_user(context: BotContext) -> User:
    """The sender's account: the gate let them in before any handler ran."""
    if context.account is None:
        raise RuntimeError("no account for this update: the gate did not let it in")
    return context.account
