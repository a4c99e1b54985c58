"""`client_address(request)`: the peer, or what trusted proxies say in X-Forwarded-For, served
for real on loopback (where the peer is 127.0.0.1)."""

from __future__ import annotations

import ast
import ipaddress
import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from web.client_address import client_address
from web.keys import CONFIG
from web.services import WebConfig

WEB = Path(__file__).resolve().parents[2] / "web"
PEER_WORDS = re.compile(r"forwarded|peername|x-real-ip", re.IGNORECASE)


async def _seen(trusted: list[str], *forwarded_for: str) -> str:
    """The client address a route sees for a request from loopback with these headers."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=str(client_address(request)))

    app = web.Application()
    app[CONFIG] = WebConfig(version="test", trusted_proxies=tuple(ipaddress.ip_network(n) for n in trusted))
    app.router.add_get("/", echo)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        headers = [("X-Forwarded-For", value) for value in forwarded_for]
        async with client.get("/", headers=headers) as response:
            return await response.text()


@pytest.mark.parametrize(("trusted", "forwarded_for", "client"), [
    ([], [], "127.0.0.1"),
    ([], ["203.0.113.9"], "127.0.0.1"),  # no proxy trusted: the header is anyone's to write
    (["10.0.0.0/8"], ["203.0.113.9"], "127.0.0.1"),  # the peer is not one of the trusted proxies
    (["127.0.0.1/32"], ["203.0.113.9"], "203.0.113.9"),
    (["127.0.0.1/32"], ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),  # what the client wrote itself is skipped
    (["127.0.0.0/8", "10.0.0.0/8"], ["6.6.6.6, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # two proxies deep
    (["127.0.0.0/8", "10.0.0.0/8"], ["10.9.9.9, 10.1.2.3"], "10.9.9.9"),  # all trusted: the earliest
    (["127.0.0.1/32"], ["6.6.6.6", "203.0.113.9"], "203.0.113.9"),  # several headers: one chain, in order
    (["127.0.0.1/32"], ["not-an-address"], "127.0.0.1"),  # a proxy would not write that: the chain ends
    (["127.0.0.1/32"], [" 2001:db8::7 "], "2001:db8::7"),
    (["127.0.0.1/32"], ["::ffff:198.51.100.4"], "198.51.100.4"),  # one client, one spelling
])
async def test_x_forwarded_for_is_believed_from_trusted_proxies_only(trusted, forwarded_for, client) -> None:
    assert await _seen(trusted, *forwarded_for) == client


def _reads_the_peer_or_the_header(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "remote"
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(PEER_WORDS.search(node.value))


# client_address.py believes the header from trusted proxies alone; the reverse proxy names it
# only to drop the client's copies and write its own for the gateway (tested in tests/web/proxy/).
ALLOWED = {"client_address.py", "proxy/headers.py"}


def test_no_other_web_module_reads_the_peer_or_the_forwarding_header() -> None:
    """So no route counts a proxy's address as its client's, or trusts a header anyone can write."""
    offences = [f"{path.relative_to(WEB.parent)}:{node.lineno}" for path in sorted(WEB.rglob("*.py"))
                if path.relative_to(WEB).as_posix() not in ALLOWED
                for node in ast.walk(ast.parse(path.read_text())) if _reads_the_peer_or_the_header(node)]
    assert offences == []
