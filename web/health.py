"""GET /healthz: platform liveness, its version, and whether the database answers."""

from aiohttp import web

from db.engine import ping
from web.api.operations import operation
from web.api.schemas import PlatformHealth
from web.keys import CONFIG, SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
@operation("Platform liveness, version and database reachability", tag="platform",
           responses={200: PlatformHealth, 503: PlatformHealth}, security="none")
async def healthz(request: web.Request) -> web.Response:
    database_ok = await ping(request.app[SERVICES].database)
    body = PlatformHealth(
        status="ok" if database_ok else "degraded",
        version=request.app[CONFIG].version,
        database="ok" if database_ok else "unreachable",
    )
    return web.json_response(body.model_dump(mode="json"), status=200 if database_ok else 503)
