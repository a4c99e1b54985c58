"""Which headers cross the proxy, each way (RFC 9110 section 7.6.1 for the hop-by-hop ones), and
the two response headers that name the gateway's own origin: Set-Cookie's Domain and Location."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

from web.proxy.upstream import Upstream

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Who the client is and how it came: only the proxy may say, so the client's own copies go.
CLIENT_CLAIMS = frozenset({"forwarded", "x-real-ip"})
FORWARDED_PREFIX = "x-forwarded-"
# The upgrade to a WebSocket, said again by the proxy on each side as it is hop-by-hop. The rest of
# the handshake (the client's Sec-WebSocket-Key, -Version, -Protocol, -Extensions; the gateway's
# -Accept, -Protocol, -Extensions) crosses unchanged like any end-to-end header: the proxy relays the
# upgraded connection's bytes, so what the two ends agree on is between them.
WEBSOCKET_UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade"}
# Sent by the client library unless skipped: the gateway must get the client's own, or none.
NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# Host is the gateway's own (the client sets it from the URL); Expect was answered on this side.
REQUEST_ONLY = frozenset({"host", "expect"})


def named_in_connection(headers: CIMultiDictProxy[str]) -> set[str]:
    return {name.strip().lower() for value in headers.getall("Connection", ()) for name in value.split(",")}


def _passed(headers: CIMultiDictProxy[str], dropped: Iterable[str]) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | named_in_connection(headers) | set(dropped)
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in dropped)


def request_headers(headers: CIMultiDictProxy[str], upstream: Upstream, *, client_address: str,
                    public_scheme: str, public_host: str, websocket: bool = False) -> CIMultiDict[str]:
    dropped = set(CLIENT_CLAIMS | REQUEST_ONLY | upstream.strip_headers)
    dropped |= {name.lower() for name in upstream.set_headers}
    dropped |= {name.lower() for name in headers if name.lower().startswith(FORWARDED_PREFIX)}
    passed = _passed(headers, dropped)
    if websocket:
        passed.update(WEBSOCKET_UPGRADE)
    passed.update(upstream.set_headers)
    passed["X-Forwarded-For"] = client_address
    passed["X-Forwarded-Proto"] = public_scheme
    passed["X-Forwarded-Host"] = public_host
    return passed


def response_headers(headers: CIMultiDictProxy[str], gateway_origin: str, public_origin: str,
                     dropped: Iterable[str] = (), *, websocket: bool = False) -> CIMultiDict[str]:
    passed = _passed(headers, {name.lower() for name in dropped})
    if websocket:  # the gateway's 101
        passed.update(WEBSOCKET_UPGRADE)
    cookies = [host_only(cookie) for cookie in passed.popall("Set-Cookie", ())]
    for cookie in cookies:
        passed.add("Set-Cookie", cookie)
    if "Location" in passed:
        passed["Location"] = public_location(passed["Location"], gateway_origin, public_origin)
    return passed


def host_only(cookie: str) -> str:
    """The cookie without its Domain attribute, so the browser keeps it for the instance's host alone."""
    name_value, *attributes = cookie.split(";")
    kept = [attribute for attribute in attributes if attribute.split("=", 1)[0].strip().lower() != "domain"]
    return ";".join([name_value, *kept])


def public_location(location: str, gateway_origin: str, public_origin: str) -> str:
    """A redirect to the gateway's own address, turned towards the address the client used."""
    if location.lower().startswith(gateway_origin.lower()):
        rest = location[len(gateway_origin):]
        if not rest or rest[0] in "/?#":
            return public_origin + rest
    return location
