"""What every handler needs: the platform's services, and the account of whoever wrote."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Update
from telegram.ext import ContextTypes

from accounts.access import AccessPolicy
from accounts.invites import Invites
from accounts.users import Accounts
from db.models import User
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
    billing_enabled: bool = False


def services(context: ContextTypes.DEFAULT_TYPE) -> BotServices:
    return context.bot_data[SERVICES]


async def current_user(update: Update, context: ContextTypes.DEFAULT_TYPE) -> User:
    """The sender's account, made at first contact (a Telegram identity is enough to log in)."""
    sender, chat = update.effective_user, update.effective_chat
    return await services(context).accounts.telegram_user(sender.id, chat.id, sender.username)
