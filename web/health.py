"""GET /healthz: platform liveness, its version, and whether the database answers."""

from aiohttp import web

from db.engine import ping
from web.keys import CONFIG, SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    database_ok = await ping(request.app[SERVICES].database)
    body = {
        "status": "ok" if database_ok else "degraded",
        "version": request.app[CONFIG].version,
        "database": "ok" if database_ok else "unreachable",
    }
    return web.json_response(body, status=200 if database_ok else 503)
