"""GET, PATCH and DELETE /api/me: the caller's own account."""

from aiohttp import web

from billing.closing import close_account
from db.models import User
from web.api.bodies import json_body
from web.api.operations import operation
from web.api.schemas import AccountDeletion, Profile, ProfileChange
from web.auth import current_user
from web.keys import CREDENTIAL, SERVICES

routes = web.RouteTableDef()

GUESSED = 429  # a password confirmation is throttled like a login


def profile_json(user: User) -> dict:
    return Profile(id=user.id, email=user.email, email_verified=user.email_verified_at is not None,
                   telegram_user_id=user.telegram_user_id, telegram_username=user.telegram_username,
                   created_at=user.created_at, is_admin=user.is_admin).model_dump(mode="json")


@routes.get("/api/me")
@operation("Your account", tag="accounts", responses={200: Profile})
async def get_profile(request: web.Request) -> web.Response:
    return web.json_response(profile_json(current_user(request)))


@routes.patch("/api/me")
@operation("Change your email or password", tag="accounts", body=ProfileChange, responses={200: Profile},
           errors=(409, GUESSED),
           description="Either change needs `current_password` when the account has a password (401, field "
                       "current_password, when wrong). A new email has to be verified again; a new password "
                       "logs out every other session.")
async def change_profile(request: web.Request) -> web.Response:
    current_user(request)
    body = await json_body(request, ProfileChange)
    user = await request.app[SERVICES].accounts.change_profile(
        request[CREDENTIAL], email=body.email, password=body.password, current_password=body.current_password)
    return web.json_response(profile_json(user))


@routes.delete("/api/me")
@operation("Delete your account, every instance of it and their data", tag="accounts", body=AccountDeletion,
           responses={204: None}, errors=(GUESSED, 503),
           description="Needs `password` when the account has one. With billing on, its subscription ends first "
                       "(503, nothing deleted, when Stripe does not answer). Each instance's gateway is stopped and "
                       "its data erased before the account goes.")
async def delete_account(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_body(request, AccountDeletion)
    services = request.app[SERVICES]
    await services.accounts.confirm_deletion(user, body.password)
    await close_account(user, accounts=services.accounts, instances=services.instances, billing=services.billing)
    return web.Response(status=204)
