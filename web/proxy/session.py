"""How the client session the proxy talks to gateways through must be made (the composition
root opens it: `aiohttp.ClientSession(**client_session_options(limits))`)."""

from __future__ import annotations

from typing import Any

import aiohttp

from web.proxy.upstream import ProxyLimits


def client_session_options(limits: ProxyLimits = ProxyLimits()) -> dict[str, Any]:
    """No cookie jar (gateways' cookies belong to their users' browsers), no pool limit beyond
    the proxy's own cap per upstream, no proxy from the environment (gateways are local)."""
    return {
        "cookie_jar": aiohttp.DummyCookieJar(),
        "connector": aiohttp.TCPConnector(limit=0, limit_per_host=limits.max_connections_per_upstream),
        "timeout": aiohttp.ClientTimeout(total=None, sock_connect=limits.connect_timeout_s),
        "auto_decompress": False,
        "trust_env": False,
    }
