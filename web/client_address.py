"""Who the client is, by address: the one place that reads the peer and X-Forwarded-For.

The header is believed only from a peer inside `WebConfig.trusted_proxies` (the HTTPS edge),
and then only as far back as the chain stays inside them: each trusted proxy appends the
address it was spoken to by, so the right-most address that is not a trusted proxy is the
client. Anything further left was written by the client itself, and could be anything.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from web.keys import CONFIG

FORWARDED_FOR = "X-Forwarded-For"


def client_address(request: web.Request) -> str | None:
    """The client's IP address as text; None when the peer has none (a Unix socket)."""
    peer = _ip(request.remote or "")
    if peer is None:
        return None
    trusted = request.app[CONFIG].trusted_proxies
    hops = [hop for header in request.headers.getall(FORWARDED_FOR, ()) for hop in header.split(",")]
    while hops and any(peer in network for network in trusted):
        earlier = _ip(hops.pop())
        if earlier is None:  # a trusted proxy would not write this: the chain ends at that proxy
            break
        peer = earlier
    return str(peer)


def peer_address(request: web.Request) -> str | None:
    """The TCP peer itself, whatever any header says: for what must believe no proxy at all (the
    metrics' loopback-only default, where a proxy on this host is a loopback peer too)."""
    return request.remote


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip
