"""Signing an instance's owner in on its own host, through the dashboard: no password or token
to copy.

1. Anyone arriving on an instance host without that host's cookie is sent to the dashboard's
   `/open/<subdomain>` (with the path they wanted), known subdomain or not.
2. There, a signed-in owner gets a one-time link (accounts/login_links.py, `open_instance`: one
   minute, bound to the instance and to their dashboard session) and is redirected with it to
   the instance host's `/_clawfleet/sign-in`; anyone else gets the dashboard's 404, the same for
   an instance that is someone else's as for one that does not exist. Signed-out people sign in
   first and come back.
3. The instance host uses the link up and sets its own host-only cookie (visitors.py), then
   sends the browser where it wanted to go.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import web

from accounts.login_links import OPEN_INSTANCE
from db.errors import NotFound
from db.models import Instance
from web.keys import CONFIG, CREDENTIAL, SERVICES, VIA_COOKIE
from web.pages.guard import signed_in

routes = web.RouteTableDef()

SIGN_IN_PATH = "/_clawfleet/sign-in"
MAX_NEXT = 2048


@routes.get("/open/{subdomain}")
async def open_instance(request: web.Request) -> web.Response:
    """The dashboard's door to an instance's host: a one-time link for its owner."""
    user = signed_in(request)
    services = request.app[SERVICES]
    instance = await services.instances.at_subdomain(request.match_info["subdomain"])
    if instance is None or instance.user_id != user.id or not request.get(VIA_COOKIE):
        raise NotFound("No such assistant.")  # someone else's, or none: the same answer
    issued = await services.login_links.issue(user, OPEN_INSTANCE, instance_id=instance.id,
                                              session_id=request[CREDENTIAL].token.id)
    query = {"code": issued.token, "next": safe_next(request.query.get("next", "/"))}
    raise web.HTTPSeeOther(f"{services.instances.urls.url(instance.subdomain)}{SIGN_IN_PATH}?{urlencode(query)}")


def dashboard_door(request: web.Request, subdomain: str) -> str:
    """Where a visitor without this host's cookie is sent: the dashboard's `/open/<subdomain>`,
    carrying the path they asked for."""
    public_url = request.app[CONFIG].public_url.rstrip("/")
    wanted = safe_next(request.path_qs)
    suffix = f"?next={quote(wanted, safe='/')}" if wanted != "/" else ""
    return f"{public_url}/open/{quote(subdomain)}{suffix}"


def safe_next(path: str) -> str:
    """A path on the same host, or `/`: never another host (`//evil`, `/\\evil`) nor a scheme."""
    if (not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > MAX_NEXT
            or any(ch < " " for ch in path) or path.startswith(SIGN_IN_PATH)):
        return "/"
    return path


async def redeem(request: web.Request, instance: Instance) -> tuple:
    """The visitor behind the one-time link in the query, the link used up (refused: 401)."""
    code = request.query.get("code", "")
    return await request.app[SERVICES].login_links.redeem_instance_link(code, instance.id)
