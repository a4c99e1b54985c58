"""How a one-time link reaches its person: the one place that picks the channel.

By email when an SMTP server is configured (CLAWFLEET_SMTP_URL) and the account has an address;
else by ClawFleet's Telegram bot when it runs and the account has a chat with it (never for an
email proof: only a mail to the address proves it); else there is no channel, and the operator
makes the link by hand (`clawfleet admin link ...`) and hands it over. Links are never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Literal
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

from accounts.login_links import LIFETIMES, LOGIN, RESET_PASSWORD, VERIFY_EMAIL, Purpose
from db.errors import Conflict, Unavailable
from db.models import User

log = structlog.get_logger(__name__)

Channel = Literal["email", "telegram"]
Notify = Callable[[uuid.UUID, str], Awaitable[None]]  # provisioner.notify.Notifier.notify: the bot's

PATHS = {LOGIN: "/login/link", VERIFY_EMAIL: "/verify-email", RESET_PASSWORD: "/reset-password"}
SMTP_TIMEOUT_S = 30
NO_CHANNEL = ("There is no way to send you this link here: this ClawFleet sends no email{telegram}. "
              "Ask its operator for the link (they make it with `clawfleet admin link`).")

_SUBJECTS = {
    LOGIN: "Your ClawFleet login link",
    VERIFY_EMAIL: "Confirm your email address for ClawFleet",
    RESET_PASSWORD: "Reset your ClawFleet password",
}
_WHAT = {
    LOGIN: "To log in to your ClawFleet dashboard, open this link",
    VERIFY_EMAIL: "To confirm that {email} is your address, open this link",
    RESET_PASSWORD: "To choose a new password for your ClawFleet account, open this link",
}


@dataclass(frozen=True)
class SmtpServer:
    """CLAWFLEET_SMTP_URL taken apart."""

    host: str
    port: int
    implicit_tls: bool  # smtps://: TLS from the first byte; smtp:// upgrades with STARTTLS when offered
    username: str | None = None
    password: str | None = None


def smtp_server(url: str) -> SmtpServer:
    """smtp://[user:pass@]host[:port] (port 587 by default) or smtps://... (465); ValueError,
    never quoting the URL (it holds a password), for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("must name a host, like smtp://user:pass@mail.example.com:587")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be only smtp(s)://user:pass@host:port, with nothing after the port")
    implicit_tls = parts.scheme == "smtps"
    return SmtpServer(parts.hostname, port or (465 if implicit_tls else 587), implicit_tls,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password is not None else None)


@dataclass(frozen=True)
class Mail:
    server: SmtpServer
    sender: str  # the From address


class Delivery:
    def __init__(self, public_url: str, mail: Mail | None = None, telegram: Notify | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self.mail = mail
        self.telegram = telegram  # None while the bot is off

    def url(self, purpose: Purpose, token: str) -> str:
        """Where the link opens: a page of the dashboard, which hands the token to the API."""
        return f"{self.public_url}{PATHS[purpose]}?token={token}"

    def channel(self, user: User, purpose: Purpose) -> Channel | None:
        if self.mail is not None and user.email is not None:
            return "email"
        if self.telegram is not None and user.telegram_chat_id is not None and purpose != VERIFY_EMAIL:
            return "telegram"
        return None

    async def send(self, user: User, purpose: Purpose, token: str) -> Channel:
        """Sends the link by the account's channel, and says which; Conflict (ask the operator)
        when it has none, Unavailable when the mail server would not take it."""
        channel = self.channel(user, purpose)
        if channel is None:
            raise self.no_channel(purpose)
        url = self.url(purpose, token)
        if channel == "email":
            await self._email(user.email, purpose, url)
        else:
            await self.telegram(user.id, f"{_WHAT[purpose].format(email=user.email)}:\n{url}\n\n{_terms(purpose)}")
        log.info("link sent", user_id=str(user.id), purpose=purpose, channel=channel)
        return channel

    def no_channel(self, purpose: Purpose) -> Conflict:
        telegram = ""
        if purpose != VERIFY_EMAIL:
            telegram = " and your account has no Telegram chat with its bot"
        return Conflict(NO_CHANNEL.format(telegram=telegram))

    async def _email(self, address: str, purpose: Purpose, url: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.mail.sender, address, _SUBJECTS[purpose]
        message.set_content(f"{_WHAT[purpose].format(email=address)}:\n\n{url}\n\n{_terms(purpose)}\n"
                            "If you did not ask for it, ignore this email: nothing changes.\n")
        server = self.mail.server
        try:
            await aiosmtplib.send(message, hostname=server.host, port=server.port, username=server.username,
                                  password=server.password, use_tls=server.implicit_tls,
                                  start_tls=False if server.implicit_tls else None, timeout=SMTP_TIMEOUT_S)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("the mail server did not take an email", purpose=purpose, reason=type(exc).__name__)
            raise Unavailable("The email could not be sent just now. Please try again in a while.") from None


def _terms(purpose: Purpose) -> str:
    return f"The link works once, within {_duration(LIFETIMES[purpose])}."


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "an hour" if hours == 1 else f"{hours} hours"

