"""GET and POST /api/tokens, DELETE /api/tokens/{id}: the caller's named API tokens."""

from aiohttp import web

from db.models import ApiToken
from web.api.bodies import json_body
from web.api.operations import operation
from web.api.schemas import NewToken, TokenInfo, TokenList, TokenRequest
from web.auth import current_user
from web.keys import CREDENTIAL, SERVICES

routes = web.RouteTableDef()

RIGHTS = ("A session (a login) may always; an API token only when it was made with "
          "`can_manage_tokens`, else 403.")


def token_info(record: ApiToken) -> TokenInfo:
    return TokenInfo.model_validate(record, from_attributes=True)


@routes.get("/api/tokens")
@operation("Your API tokens (never the tokens themselves)", tag="tokens", responses={200: TokenList})
async def list_tokens(request: web.Request) -> web.Response:
    records = await request.app[SERVICES].accounts.api_tokens.list(current_user(request))
    return web.json_response(TokenList(tokens=[token_info(record) for record in records]).model_dump(mode="json"))


@routes.post("/api/tokens")
@operation("Make an API token, shown this once", tag="tokens", body=TokenRequest, responses={201: NewToken},
           errors=(403, 409), description=RIGHTS + " An account holds 50 at most (409 beyond).")
async def create_token(request: web.Request) -> web.Response:
    current_user(request)
    body = await json_body(request, TokenRequest)
    issued = await request.app[SERVICES].accounts.api_tokens.create(
        request[CREDENTIAL], body.name, can_manage_tokens=body.can_manage_tokens)
    answer = NewToken(**dict(token_info(issued.record)), token=issued.token)
    return web.json_response(answer.model_dump(mode="json"), status=201)


@routes.delete("/api/tokens/{id}")
@operation("Revoke one of your API tokens", tag="tokens", responses={204: None}, errors=(403, 404),
           description=RIGHTS)
async def revoke_token(request: web.Request) -> web.Response:
    current_user(request)
    await request.app[SERVICES].accounts.api_tokens.revoke(request[CREDENTIAL], request.match_info["id"])
    return web.Response(status=204)
