"""The per-instance reverse proxy: a user's browser reaches their own OpenClaw gateway through
the platform, over HTTP and WebSocket, with the platform deciding who is asking."""

from web.proxy.forward import ReverseProxy
from web.proxy.session import client_session_options
from web.proxy.upstream import ProxyLimits, Upstream

__all__ = ["ProxyLimits", "ReverseProxy", "Upstream", "client_session_options"]
