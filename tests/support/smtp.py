"""A real SMTP server on loopback (aiosmtpd), in the test's event loop, that keeps what it is
sent: what the tests of emailed links read their links from."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER, PASSWORD = "clawfleet", "p@ss word"  # in the URL: clawfleet:p%40ss%20word
LINK = re.compile(r"https?://\S+\?token=\S+")


class Mailbox:
    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.logins: list[str] = []
        self.url = ""
        self._arrived = asyncio.Condition()

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        async with self._arrived:
            self.received.append(message_from_bytes(envelope.content, policy=policy.default))
            self._arrived.notify_all()
        return "250 OK"

    def authenticate(self, server: SMTP, session: object, envelope: object, mechanism: str,
                     auth_data: object) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(), PASSWORD.encode())
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    async def mail_to(self, address: str, timeout: float = 10) -> EmailMessage:
        """The first mail to `address`, waited for."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: any(address in mail["To"] for mail in self.received))
        return next(mail for mail in self.received if address in mail["To"])


def link_in(mail: EmailMessage) -> str:
    [link] = LINK.findall(mail.get_content())
    return link


def token_of(link: str) -> str:
    return link.partition("?token=")[2]


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Mailbox]:
    mailbox = Mailbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(mailbox, hostname="mail.test", authenticator=mailbox.authenticate, auth_require_tls=False),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mailbox.url = f"smtp://{USER}:p%40ss%20word@127.0.0.1:{port}"
    try:
        yield mailbox
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    async with smtp_server() as box:
        yield box
