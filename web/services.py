"""What the web app is given by the composition root: the services its routes call, already
opened, and its own small configuration. The web layer opens nothing itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.account_links import AccountLinks
from accounts.invites import Invites
from accounts.login_links import LoginLinks
from accounts.users import Accounts
from admin.tools import AdminTools
from billing.service import Billing
from metrics import Metrics
from model_gateway.caps import SpendCaps
from model_gateway.reports import UsageReports
from provisioner.instance_backups.service import InstanceBackups
from provisioner.resources.history import ResourceHistory
from provisioner.service import InstanceService
from web.proxy import ReverseProxy


@dataclass(frozen=True)
class WebServices:
    accounts: Accounts
    invites: Invites
    login_links: LoginLinks
    instances: InstanceService
    database: AsyncEngine  # pinged by /healthz
    # where Telegram webhook updates go when the provisioning bot runs in webhook mode (the web
    # layer never imports the bot): None otherwise
    telegram_updates: Callable[[Any], Awaitable[None]] | None = None
    account_links: AccountLinks | None = None  # email proofs, password resets, Telegram links
    proxy: ReverseProxy | None = None  # to the instances' gateways, on their own hosts (web.instance_site)
    billing: Billing | None = None  # None while billing is off (no CLAWFLEET_STRIPE_SECRET_KEY)
    usage: UsageReports | None = None  # what the model gateway recorded; None: no model gateway
    caps: SpendCaps | None = None  # monthly spending caps; None: none enforced here
    metrics: Metrics = field(default_factory=Metrics)  # the platform's, served at /metrics
    resources: ResourceHistory | None = None  # gateways' CPU and memory samples; None: none taken here
    admin: AdminTools | None = None  # the operator's section (web/pages/admin)
    backups: InstanceBackups | None = None  # instance backups; None: off


@dataclass(frozen=True)
class WebConfig:
    version: str  # ClawFleet's, shown by /healthz
    telegram_webhook_secret: SecretStr | None = None
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # whose X-Forwarded-For is believed
    public_url: str = "http://localhost:8080"  # where users reach the dashboard: links, cookies, origins
    telegram_bot_username: str | None = None  # the provisioning bot's, for t.me links; None: bot off
    data_retention_days: int = 30  # how long a deleted instance's kept data stays (the delete page says it)
    metrics_token: SecretStr | None = None  # what /metrics wants as a bearer token; None: loopback peers only

    @property
    def secure(self) -> bool:
        """HTTPS: cookies are Secure and `__Host-` prefixed, and HSTS is sent."""
        return self.public_url.startswith("https://")

    @property
    def session_cookie(self) -> str:
        # A `__Host-` cookie is host-only, path /, Secure: never sent to an instance's host.
        return "__Host-clawfleet_session" if self.secure else "clawfleet_session"
