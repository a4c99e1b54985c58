"""/billing: a placeholder until billing is on."""

from aiohttp import web

from web.pages.guard import signed_in
from web.pages.render import render

routes = web.RouteTableDef()


@routes.get("/billing")
async def billing(request: web.Request) -> web.Response:
    signed_in(request)
    return render(request, "billing.html")
