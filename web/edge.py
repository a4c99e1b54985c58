"""GET /edge/certificate?domain=NAME: the HTTPS edge's question before it asks a certificate
authority for a certificate on demand (Caddy's `on_demand_tls ask`): 200 for the dashboard's own
host and each instance's host, 404 for every other name, so a stranger pointing DNS at the edge
cannot make it fetch certificates (and spend the authority's rate limits) for names we never serve.

Only the answer's status matters to the edge. It says no more than the instance hosts do
themselves: an unknown instance host is refused a certificate, a known one is served."""

from aiohttp import web

from db.status import Status
from web.api.operations import Parameter, operation
from web.api.schemas import EdgeName
from web.errors import error_response
from web.keys import SERVICES

routes = web.RouteTableDef()

DOMAIN = Parameter("domain", "query", {"type": "string"}, "The host name a TLS client asked for (SNI).")


@routes.get("/edge/certificate")
@operation("May the HTTPS edge get a certificate for this name?", tag="platform",
           responses={200: EdgeName}, errors=(400, 404), parameters=(DOMAIN,), security="none")
async def certificate(request: web.Request) -> web.Response:
    name = request.query.get("domain", "").strip().lower().rstrip(".")
    if not name:
        return error_response(400, "invalid_input", "Say which name: ?domain=<host name>.", "domain")
    if await _served(request, name):
        return web.json_response(EdgeName(domain=name, served=True).model_dump(mode="json"))
    return error_response(404, "not_found", f"{name[:253]} is not a name this platform serves.", "domain")


async def _served(request: web.Request, name: str) -> bool:
    instances = request.app[SERVICES].instances
    if name == instances.urls.dashboard_host:
        return True
    subdomain = instances.urls.subdomain_of(name)
    if subdomain is None:
        return False
    instance = await instances.at_subdomain(subdomain)
    return instance is not None and instance.status != Status.DELETING
