"""GET /api/openapi.json and /api/docs over the real app: every route of the router is in the
document with its bodies, answers and errors, the docs page runs under a policy without inline
script from files the app serves itself, and unknown routes and methods answer the JSON error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from web.api.openapi import API_PATHS, STATIC, Undescribed, document
from web.api.operations import operation_of
from web.health import healthz
from web.keys import CONFIG

VENDOR = Path(__file__).parents[2] / "web" / "static" / "vendor" / "redoc"


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        yield api
    await runtime.close()


def _router_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every API route but HEAD (aiohttp's twin of each GET); the files
    and the dashboard's pages are not the API."""
    found = set()
    for route in app.router.routes():
        if route.method != "HEAD" and route.resource.name != STATIC and route.resource.canonical.startswith(API_PATHS):
            found.add((route.method.lower(), re.sub(r"\{(\w+):[^{}]+\}", r"{\1}", route.resource.canonical)))
    return found


async def test_every_route_of_the_app_is_in_the_document(api: Api) -> None:
    status, spec = await api.call("GET", "/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    documented = {(method, path) for path, operations in spec["paths"].items() for method in operations}
    assert documented == _router_operations(api.server.app)
    assert {("get", "/api/tokens"), ("post", "/api/tokens"), ("delete", "/api/tokens/{id}"), ("get", "/api/me"),
            ("patch", "/api/me"), ("delete", "/api/me"), ("get", "/api/docs"), ("get", "/healthz"),
            ("post", "/api/webhooks/telegram")} <= documented


async def test_a_route_without_a_description_fails_the_document(api: Api) -> None:
    async def undescribed(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app[CONFIG] = api.server.app[CONFIG]
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/a-page", undescribed)  # the dashboard's pages are not the API's
    assert set(document(app)["paths"]) == {"/healthz"}
    app.router.add_get("/api/undescribed", undescribed)
    with pytest.raises(Undescribed, match="/api/undescribed"):
        document(app)


async def test_operations_say_their_bodies_answers_errors_and_parameters(api: Api) -> None:
    _, spec = await api.call("GET", "/api/openapi.json")
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    ids = [operation["operationId"] for operations in paths.values() for operation in operations.values()]
    assert len(ids) == len(set(ids))

    create = paths["/api/instances"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InstanceRequest"}
    assert set(schemas["InstanceRequest"]["required"]) == {"model_provider"}  # api_key unless use_platform_key
    assert schemas["InstanceRequest"]["additionalProperties"] is False
    assert {"202", "400", "401", "402", "409", "413", "503"} <= set(create["responses"])
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}

    token = schemas["TokenRequest"]["properties"]["name"]
    assert (token["minLength"], token["maxLength"]) == (1, 100)
    assert "token" not in schemas["TokenInfo"]["properties"] and "token" in schemas["NewToken"]["properties"]

    action = paths["/api/instances/{id}/{action}"]["post"]
    assert {p["name"]: p["schema"].get("enum") for p in action["parameters"]} == {
        "id": None, "action": ["start", "stop", "restart"]}
    assert {p["name"] for p in paths["/api/instances/{id}"]["delete"]["parameters"]} == {"id", "purge"}
    logs = paths["/api/instances/{id}/logs"]["get"]
    assert {p["name"] for p in logs["parameters"]} == {"id", "tail", "follow"}
    assert set(logs["responses"]["200"]["content"]) == {"text/plain", "text/event-stream"}
    assert set(paths["/api/instances/{id}/progress"]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}
    assert "Retry-After" in paths["/api/auth/login"]["post"]["responses"]["429"]["headers"]

    security = spec["components"]["securitySchemes"]
    assert security["bearer"] == {**security["bearer"], "type": "http", "scheme": "bearer"}
    assert security["session_cookie"] == {**security["session_cookie"], "type": "apiKey", "in": "cookie",
                                          "name": "clawfleet_session"}
    assert paths["/api/me"]["get"]["security"] == [{"bearer": []}, {"session_cookie": []}]
    assert paths["/healthz"]["get"]["security"] == []


async def test_every_handler_is_described_with_a_summary(api: Api) -> None:
    for route in api.server.app.router.routes():
        if route.resource.name != STATIC and route.resource.canonical.startswith(API_PATHS):
            described = operation_of(route.handler)
            assert described is not None and described.summary, route


async def test_the_docs_page_runs_without_inline_script_from_vendored_files(api: Api) -> None:
    async with api.http.get(api.url("/api/docs")) as response:
        assert response.status == 200 and response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        page = await response.text()
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all(body.strip() == "" and "src=" in attributes for attributes, body in scripts)
    assert "http" not in page  # nothing from elsewhere
    for source in re.findall(r'src="([^"]+)"', page):
        async with api.http.get(api.url(source)) as response:
            assert response.status == 200, source
            assert "javascript" in response.content_type
            body = await response.text()
        assert len(body) > 100
    assert (VENDOR / "LICENSE").read_text().startswith("The MIT License")


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/api/no/such/route", 404, "not_found"),
    ("DELETE", "/api/tokens/a/b", 404, "not_found"),
    ("POST", "/api/me", 405, "method_not_allowed"),
    ("PUT", "/api/tokens", 405, "method_not_allowed"),
    ("GET", "/api/auth/login", 405, "method_not_allowed"),
])
async def test_unknown_routes_and_methods_answer_the_json_error(api: Api, method, path, status, code) -> None:
    async with api.http.request(method, api.url(path)) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        body = await response.json()
        assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
        if status == 405:
            assert response.headers["Allow"], "a 405 says which methods the path takes"
