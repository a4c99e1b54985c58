"""GET /api/openapi.json: the OpenAPI 3.1 document of every route of the app, made from the
app's router and what each handler's `@operation` says (web.api.operations), with the schemas
of the very models the handlers validate and answer with. GET /api/docs shows it (ReDoc,
served from web/static/, no script inline: the page's Content-Security-Policy allows none)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web import telegram_webhook
from web.api.operations import Operation, Parameter, operation, operation_of
from web.api.schemas import Error, ResponseBody, TelegramUpdate
from web.keys import CONFIG

routes = web.RouteTableDef()

OPENAPI_PATH = "/api/openapi.json"
STATIC = "static"  # the name of the files' resource: files, not operations
SCHEMAS = "#/components/schemas/{model}"
REASONS = {400: "Bad input: `field` names what to fix", 401: "Not signed in, or a wrong credential",
           402: "Over the plan's limit", 403: "Not allowed", 404: "No such thing (or someone else's)",
           405: "Method not allowed", 409: "Clashes with the current state", 413: "The body is too large",
           429: "Too many attempts: wait Retry-After seconds", 500: "Failed on our side: nothing was kept",
           503: "Unavailable, or no room on this server"}
SUCCESSES = {200: "OK", 201: "Created", 202: "Accepted: under way", 204: "Done, nothing to say"}
SECURITY = {"user": [{"bearer": []}, {"session_cookie": []}], "none": [], "telegram": [{"telegram_secret": []}],
            "stripe": [{"stripe_signature": []}], "metrics": [{"metrics_token": []}, {}]}
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ClawFleet API</title>
</head>
<body>
<div id="api-docs" data-spec-url="/api/openapi.json"></div>
<script src="/static/vendor/redoc/redoc.standalone.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""
# ReDoc styles itself with <style> elements and searches in a worker made from a blob
DOCS_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")

# The webhook is the bot's door, not the API's (web/telegram_webhook.py): described here
operation("One of Telegram's updates for the provisioning bot (webhook mode)", tag="telegram",
          body=TelegramUpdate, responses={200: "text/plain"}, errors=(401, 404), security="telegram",
          description="Refused without the secret given to setWebhook in X-Telegram-Bot-Api-Secret-Token; "
                      "404 when the bot does not run in webhook mode.")(telegram_webhook.telegram_update)


API_PATHS = ("/api/", "/healthz", "/metrics")


class Undescribed(Exception):
    """A route whose handler says nothing of itself: it would be missing from the document."""


def document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: set[type[BaseModel]] = {Error}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None or route.resource.name == STATIC:
            continue  # aiohttp adds HEAD beside each GET; it answers alike, without a body
        if not route.resource.canonical.startswith(API_PATHS):
            continue  # the dashboard's pages are for people, not API clients
        described = operation_of(route.handler)
        if described is None:
            raise Undescribed(f"{route.method} {route.resource.canonical}: its handler has no @operation")
        path, path_parameters = _path(route.resource)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, described, path_parameters)
        models |= _models_of(described)
    definitions = _schemas(models)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ClawFleet API", "version": app[CONFIG].version,
                 "description": "Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`; `field` names the "
                                "input to fix."},
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A session token (from login or registration) or an API token."},
                "session_cookie": {"type": "apiKey", "in": "cookie", "name": app[CONFIG].session_cookie,
                                   "description": "The dashboard's session cookie (a session token)."},
                "telegram_secret": {"type": "apiKey", "in": "header", "name": telegram_webhook.SECRET_HEADER,
                                    "description": "The secret token given to Telegram's setWebhook."},
                "stripe_signature": {"type": "apiKey", "in": "header", "name": "Stripe-Signature",
                                     "description": "Stripe's signature of the body with the endpoint's secret."},
                "metrics_token": {"type": "http", "scheme": "bearer",
                                  "description": "CLAWFLEET_METRICS_TOKEN; without one set, loopback peers only."},
            },
        },
    }


def _path(resource: web.AbstractResource) -> tuple[str, list[dict]]:
    """The resource's path in OpenAPI's words (its canonical one: `{name}` placeholders), and
    its path parameters: a placeholder whose own pattern is a choice of words
    (`{action:start|stop|restart}`) becomes an enum."""
    info = resource.get_info()
    pattern = info["pattern"].pattern if "pattern" in info else ""
    parameters = []
    for name in re.findall(r"\{(\w+)\}", resource.canonical):
        schema: dict[str, Any] = {"type": "string"}
        own = re.search(rf"\(\?P<{name}>([^()]*)\)", pattern)
        if own and re.fullmatch(r"[\w-]+(\|[\w-]+)+", own.group(1)):
            schema["enum"] = own.group(1).split("|")
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return resource.canonical, parameters


def _operation(route: web.AbstractRoute, described: Operation, path_parameters: list[dict]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": described.summary,
        "tags": [described.tag],
        "security": SECURITY[described.security],
        "responses": _responses(described),
    }
    if described.description:
        spec["description"] = described.description
    parameters = path_parameters + [_parameter(parameter) for parameter in described.parameters]
    if parameters:
        spec["parameters"] = parameters
    if described.body is not None:
        spec["requestBody"] = {"required": any(f.is_required() for f in described.body.model_fields.values()),
                               "content": {"application/json": {"schema": _ref(described.body)}}}
    return spec


def _responses(described: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in described.responses.items():
        entry: dict[str, Any] = {"description": SUCCESSES.get(status, REASONS.get(status, "Answer"))}
        if isinstance(answer, type):
            entry["content"] = {"application/json": {"schema": _ref(answer)}}
        elif answer is not None:
            entry["content"] = {media: _stream(media, described) for media in
                                ((answer,) if isinstance(answer, str) else answer)}
        responses[str(status)] = entry
    for status in described.error_statuses:
        entry = {"description": REASONS[status], "content": {"application/json": {"schema": _ref(Error)}}}
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
        responses[str(status)] = entry
    return responses


def _stream(media: str, described: Operation) -> dict[str, Any]:
    if media == "application/json":
        return {"schema": {"type": "object"}}
    if media != "text/event-stream" or described.streams is None:
        return {"schema": {"type": "string"}}
    event, model = described.streams
    data: dict[str, Any] = {"type": "string"}
    if model is not None:
        data |= {"contentMediaType": "application/json", "contentSchema": _ref(model)}
    return {"schema": {"description": "Each event of the stream.", "type": "object", "required": ["data"],
                       "properties": {"event": {"const": event}, "id": {"type": "string"}, "data": data}}}


def _parameter(parameter: Parameter) -> dict[str, Any]:
    return {"name": parameter.name, "in": parameter.where, "required": False, "schema": parameter.schema,
            "description": parameter.description}


def _models_of(described: Operation) -> set[type[BaseModel]]:
    found = {described.body} | {answer for answer in described.responses.values() if isinstance(answer, type)}
    streamed = described.streams[1] if described.streams else None
    return {model for model in found | {streamed} if model is not None}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": SCHEMAS.format(model=model.__name__)}


def _schemas(models: set[type[BaseModel]]) -> dict[str, Any]:
    """Each model's JSON Schema, request bodies as validated and answers as serialised."""
    requests = [(model, "validation") for model in models if not _is_answer(model)]
    answers = [(model, "serialization") for model in models if _is_answer(model)]
    _, top = models_json_schema(sorted(requests + answers, key=lambda pair: pair[0].__name__),
                                ref_template=SCHEMAS.format(model="{model}"))
    return top.get("$defs", {})


def _is_answer(model: type[BaseModel]) -> bool:
    return issubclass(model, ResponseBody)


@routes.get(OPENAPI_PATH)
@operation("This document (OpenAPI 3.1)", tag="platform", responses={200: "application/json"}, security="none")
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(document(request.app))


@routes.get("/api/docs")
@operation("This document, to read (ReDoc)", tag="platform", responses={200: "text/html"}, security="none")
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html",
                        headers={"Content-Security-Policy": DOCS_POLICY, "X-Content-Type-Options": "nosniff"})
