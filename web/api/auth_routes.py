"""POST /api/auth/register, /login, /logout, /invite."""

from aiohttp import web

from db.errors import InvalidInput
from web.api.bodies import json_object
from web.auth import bearer_token, current_user
from web.client_address import client_address
from web.keys import SERVICES

routes = web.RouteTableDef()


@routes.post("/api/auth/register")
async def register(request: web.Request) -> web.Response:
    body = await json_object(request, {"email", "password"})
    user, issued = await request.app[SERVICES].accounts.register(body.get("email"), body.get("password"),
                                                                client=client_address(request))
    return web.json_response({"user": {"id": str(user.id), "email": user.email}, "token": issued.token}, status=201)


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await json_object(request, {"email", "password"})
    issued = await request.app[SERVICES].accounts.login(body.get("email"), body.get("password"),
                                                          client=client_address(request))
    return web.json_response({"token": issued.token})


@routes.post("/api/auth/logout")
async def logout(request: web.Request) -> web.Response:
    current_user(request)
    await request.app[SERVICES].accounts.logout(bearer_token(request) or "")
    return web.Response(status=204)


@routes.post("/api/auth/invite")
async def redeem_invite(request: web.Request) -> web.Response:
    """Redeem an invite code (CLAWFLEET_ACCESS=invite) for the logged-in account."""
    user = current_user(request)
    body = await json_object(request, {"code"})
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("Send the invite code as {\"code\": \"inv-...\"}.", field="code")
    await request.app[SERVICES].invites.redeem(user, code[:64])
    return web.Response(status=204)
