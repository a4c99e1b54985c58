"""Schemathesis against /api/openapi.json of the real app on a loopback server (in-memory
gateways, the fake Bot API), signed in with a session token: requests made from the document
get no 5xx, and every answer is one the document allows (status, content type, schema). A
document that is wrong about an answer fails the same checks (the last tests)."""

from __future__ import annotations

import asyncio
import copy
import traceback

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 15  # per operation: about 20 operations, well within a minute and a half
TIMEOUT_S = 10  # a stream (progress, logs?follow=1) that does not end fails the run instead of hanging it
OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
# logging out would end the signed-in session the other operations run with
SKIPPED = {("POST", "/api/auth/logout")}


@pytest.fixture
async def api(settings_for, sessions):
    runtime = MemoryRuntime()
    async with running_api(settings_for(max_instances_per_user=2), runtime) as api:
        await api.sign_up()
        yield api
    await runtime.close()


async def _document(api: Api) -> dict:
    status, document = await api.call("GET", "/api/openapi.json")
    assert status == 200
    return document


def _check_operations(document: dict, base_url: str, token: str, *, only: set[tuple[str, str]] | None = None,
                      examples: int = EXAMPLES) -> int:
    """Runs each operation's generated requests with the checks, in this thread (schemathesis'
    client blocks; the server answers from the test's event loop); the count of operations."""
    schema = schemathesis.openapi.from_dict(document)
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIPPED or (only is not None and key not in only):
            continue

        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def conforms(case) -> None:
            case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS,
                                   timeout=TIMEOUT_S)

        conforms()
        count += 1
    return count


async def test_every_operation_answers_as_the_document_says(api: Api) -> None:
    document = await _document(api)
    base_url = api.url("").rstrip("/")
    checked = await asyncio.to_thread(_check_operations, document, base_url, api.token)
    operations = sum(len(methods) for methods in document["paths"].values())
    assert checked == operations - len(SKIPPED) and checked >= 20


async def test_a_real_instance_answers_as_the_document_says(api: Api) -> None:
    """Generated ids name no instance: these requests are about one that exists (its progress
    stream ends with its deploy; its log is read without following)."""
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    await api.wait_status(created["id"], "running")
    schema = schemathesis.openapi.from_dict(await _document(api))
    base_url = api.url("").rstrip("/")
    requests = [("GET", "/api/instances/{id}", {}), ("GET", "/api/instances/{id}/health", {}),
                ("GET", "/api/instances/{id}/progress", {}), ("GET", "/api/instances/{id}/logs", {"tail": 5}),
                ("PUT", "/api/instances/{id}/config", {}), ("GET", "/api/instances", {}), ("GET", "/api/me", {}),
                ("GET", "/api/tokens", {}), ("GET", "/api/instances/{id}/usage", {}), ("GET", "/api/me/usage", {})]

    def call_each() -> None:
        for method, path, query in requests:
            operation = schema[path][method]
            given = {"path_parameters": {"id": created["id"]}} if "{id}" in path else {}
            if query:
                given["query"] = query
            if method == "PUT":
                given["body"] = {"telegram_user_id": 123456789}
            case = operation.Case(**given)
            response = case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {api.token}"},
                                              checks=CHECKS, timeout=TIMEOUT_S)
            assert response.status_code < 300, (method, path, response.status_code, response.text)

    await asyncio.to_thread(call_each)


def _wrong_about_health(document: dict) -> dict:
    wrong = copy.deepcopy(document)
    wrong["components"]["schemas"]["PlatformHealth"]["properties"]["version"] = {"type": "integer"}
    return wrong


def _missing_a_status(document: dict) -> dict:
    wrong = copy.deepcopy(document)
    del wrong["paths"]["/api/instances/{id}"]["get"]["responses"]["404"]
    return wrong


@pytest.mark.parametrize(("break_document", "operation", "failure"), [
    (_wrong_about_health, ("GET", "/healthz"), "Response violates schema"),
    (_missing_a_status, ("GET", "/api/instances/{id}"), "Undocumented status code"),
])
async def test_a_document_wrong_about_an_answer_fails_the_checks(api: Api, break_document, operation,
                                                                 failure) -> None:
    document = await _document(api)
    base_url = api.url("").rstrip("/")
    assert await asyncio.to_thread(_check_operations, document, base_url, api.token, only={operation},
                                   examples=3) == 1  # the true document passes...
    with pytest.raises(BaseException) as raised:  # ...the broken one does not (a group of failures)
        await asyncio.to_thread(_check_operations, break_document(document), base_url, api.token,
                                only={operation}, examples=3)
    assert failure in "".join(traceback.format_exception(raised.value))
