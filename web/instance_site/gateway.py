"""The owner's requests on their instance's host, passed to its gateway by the reverse proxy
(web/proxy/), signed in as its owner: the gateway trusts the proxy's word for who is asking
(OpenClaw's trusted-proxy auth, provisioner/openclaw/config.py), so the client's own copies of
those headers never pass, and the host's cookie is taken out first (it signs the owner in here
and is none of the gateway's business, nor of anything the agent can read in its logs)."""

from __future__ import annotations

from aiohttp import web

from db.models import Instance
from provisioner.openclaw.config import FORWARDED_FOR, OWNER_HEADER, SCOPES_HEADER, owner_request_headers
from web.client_address import client_address
from web.instance_site.visitors import cookie_name
from web.keys import CONFIG, SERVICES
from web.proxy import ReverseProxy, Upstream

# Answered here: the gateway would look the owner's avatar up on Gravatar, over the internet.
AVATAR_PREFIX = "/api/users/"
AVATAR_SUFFIX = "/avatar"


async def to_gateway(request: web.Request, proxy: ReverseProxy, instance: Instance) -> web.StreamResponse:
    if request.path.startswith(AVATAR_PREFIX) and request.path.endswith(AVATAR_SUFFIX):
        return web.Response(status=404, text="No avatar.")
    config = request.app[CONFIG]
    signed_in = owner_request_headers(str(instance.user_id), client_address(request))
    set_headers = {name: value for name, value in signed_in.items() if name != FORWARDED_FOR}
    cookies = _without(request.headers.get("Cookie", ""), cookie_name(config.secure))
    if cookies:
        set_headers["Cookie"] = cookies
    upstream = Upstream(base_url=instance.endpoint_url, key=str(instance.id), set_headers=set_headers,
                        strip_headers=frozenset({"cookie", OWNER_HEADER, SCOPES_HEADER}))
    return await proxy.forward(request, upstream, client_address=signed_in[FORWARDED_FOR],
                               public_scheme=request.app[SERVICES].instances.urls.scheme, public_host=request.host)


def _without(header: str, name: str) -> str:
    """A Cookie header without the cookie `name` (every other cookie kept as sent)."""
    kept = []
    for part in header.split(";"):
        key = part.split("=", 1)[0].strip()
        if key and key != name:
            kept.append(part.strip())
    return "; ".join(kept)
