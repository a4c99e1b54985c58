"""What the web app is given by the composition root: the services its routes call, already
opened, and its own small configuration. The web layer opens nothing itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.invites import Invites
from accounts.users import Accounts
from provisioner.service import InstanceService


@dataclass(frozen=True)
class WebServices:
    accounts: Accounts
    invites: Invites
    instances: InstanceService
    database: AsyncEngine  # pinged by /healthz
    # where Telegram webhook updates go when the provisioning bot runs in webhook mode (the web
    # layer never imports the bot): None otherwise
    telegram_updates: Callable[[Any], Awaitable[None]] | None = None


@dataclass(frozen=True)
class WebConfig:
    version: str  # ClawFleet's, shown by /healthz
    telegram_webhook_secret: SecretStr | None = None
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # whose X-Forwarded-For is believed
