"""GET /healthz: platform liveness, its version, and whether the database answers."""

from aiohttp import web

from clawfleet import __version__
from db.engine import ping
from web.keys import DB_ENGINE

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    database_ok = await ping(request.app[DB_ENGINE])
    body = {
        "status": "ok" if database_ok else "degraded",
        "version": __version__,
        "database": "ok" if database_ok else "unreachable",
    }
    return web.json_response(body, status=200 if database_ok else 503)
