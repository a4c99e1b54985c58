"""POST /api/auth/register, /login, /logout, /invite."""

from aiohttp import web

from web.api.bodies import json_body
from web.api.operations import operation
from web.api.schemas import Credentials, InviteRedemption, LoggedIn, Registered, RegisteredUser
from web.auth import bearer_token, current_user
from web.client_address import client_address
from web.keys import SERVICES

routes = web.RouteTableDef()

THROTTLED = 429  # logins and registrations beyond a budget (with Retry-After)


@routes.post("/api/auth/register")
@operation("Create an account and its first session", tag="accounts", body=Credentials,
           responses={201: Registered}, errors=(409, THROTTLED), security="none")
async def register(request: web.Request) -> web.Response:
    body = await json_body(request, Credentials)
    user, issued = await request.app[SERVICES].accounts.register(body.email, body.password,
                                                                client=client_address(request))
    answer = Registered(user=RegisteredUser(id=user.id, email=user.email), token=issued.token)
    return web.json_response(answer.model_dump(mode="json"), status=201)


@routes.post("/api/auth/login")
@operation("Log in: a new session token", tag="accounts", body=Credentials, responses={200: LoggedIn},
           errors=(401, THROTTLED), security="none")
async def login(request: web.Request) -> web.Response:
    body = await json_body(request, Credentials)
    issued = await request.app[SERVICES].accounts.login(body.email, body.password, client=client_address(request))
    return web.json_response(LoggedIn(token=issued.token).model_dump(mode="json"))


@routes.post("/api/auth/logout")
@operation("Log out: the presented token stops working", tag="accounts", responses={204: None})
async def logout(request: web.Request) -> web.Response:
    current_user(request)
    await request.app[SERVICES].accounts.logout(bearer_token(request) or "")
    return web.Response(status=204)


@routes.post("/api/auth/invite")
@operation("Redeem an invite code (CLAWFLEET_ACCESS=invite)", tag="accounts", body=InviteRedemption,
           responses={204: None}, errors=(404, 409))
async def redeem_invite(request: web.Request) -> web.Response:
    """Redeem an invite code (CLAWFLEET_ACCESS=invite) for the logged-in account."""
    user = current_user(request)
    body = await json_body(request, InviteRedemption)
    await request.app[SERVICES].invites.redeem(user, body.code[:64])
    return web.Response(status=204)
