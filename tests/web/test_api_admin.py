"""The admin API over the real app on loopback (in-memory gateways; SQLite, then PostgreSQL):
admins list, page, suspend and resume, search the audit log and broadcast; for anyone else the
routes do not exist."""

from __future__ import annotations

import pytest

from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.support.waiting import RecordingNotifier

KEY = "sk-proj-adminADMINadmin0123456789abcd"


@pytest.fixture
async def api(settings_for, sessions):
    runtime, told = MemoryRuntime(), RecordingNotifier()
    try:
        async with running_api(settings_for(), runtime, notifier=told) as api:
            api.told = told
            yield api
    finally:
        await runtime.close()


async def _admin(api: Api) -> str:
    """An admin's session token (granted as `clawfleet admin grant` does)."""
    token = await api.sign_up("root@example.com")
    await api.platform.admin.operators.grant("root@example.com", actor="cli:test")
    return token


async def _owner_with_instance(api: Api, email: str) -> tuple[str, str]:
    token = await api.sign_up(email)
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": KEY}, token=token)
    assert status == 202, created
    await api.wait_status(created["id"], "running")
    return token, created["id"]


async def test_the_admin_routes_do_not_exist_for_anyone_else(api) -> None:
    owner, instance_id = await _owner_with_instance(api, "ada@example.com")
    for method, path, body in (("GET", "/api/admin/users", None), ("GET", "/api/admin/instances", None),
                               ("GET", "/api/admin/audit", None),
                               ("POST", f"/api/admin/instances/{instance_id}/suspend", {"reason": "x"}),
                               ("POST", "/api/admin/broadcasts", {"text": "hello"})):
        status, answer = await api.call(method, path, body, token=owner)
        assert status == 404 and answer["error"]["code"] == "not_found", (path, answer)
    assert (await api.call("GET", "/api/admin/users", token="-"))[0] == 401
    status, shown = await api.call("GET", f"/api/instances/{instance_id}", token=owner)
    assert shown["status"] == "running"  # nothing happened to it


async def test_an_admin_lists_pages_suspends_resumes_and_finds_it_in_the_audit_log(api) -> None:
    root = await _admin(api)
    owner, instance_id = await _owner_with_instance(api, "ada@example.com")
    await _owner_with_instance(api, "bob@example.com")
    api.token = owner  # the waits below read Ada's instance as its owner

    status, users = await api.call("GET", "/api/admin/users", token=root)
    assert status == 200 and [u["email"] for u in users["users"]] == ["bob@example.com", "ada@example.com",
                                                                      "root@example.com"]
    assert users["next"] is None and users["users"][2]["is_admin"] and users["users"][1]["instances"] == 1
    status, found = await api.call("GET", "/api/admin/instances?q=ada@example.com", token=root)
    assert status == 200 and [i["id"] for i in found["instances"]] == [instance_id]
    status, bad = await api.call("GET", "/api/admin/instances?status=napping", token=root)
    assert status == 400 and bad["error"]["field"] == "status"
    status, bad = await api.call("GET", "/api/admin/users?after=nowhere", token=root)
    assert status == 400 and bad["error"]["field"] == "after"

    status, done = await api.call("POST", f"/api/admin/instances/{instance_id}/suspend", {"reason": "spam"},
                                  token=root)
    assert status == 200 and done["outcomes"][0]["instance_id"] == instance_id, done
    await api.wait_status(instance_id, "suspended")
    status, listed = await api.call("GET", "/api/admin/instances?status=suspended", token=root)
    assert [i["id"] for i in listed["instances"]] == [instance_id] and listed["instances"][0]["suspended_by_operator"]
    assert any("spam" in text for _, text in api.told.sent)  # the owner is told why

    assert (await api.call("POST", f"/api/admin/instances/{instance_id}/resume", token=root))[0] == 200
    await api.wait_status(instance_id, "running")

    status, audit = await api.call("GET", f"/api/admin/audit?instance={instance_id}&action=instance.admin_suspend",
                                   token=root)
    assert status == 200 and [(e["action"], e["actor"]) for e in audit["entries"]] == [
        ("instance.admin_suspend", "admin:root@example.com")]
    status, family = await api.call("GET", f"/api/admin/audit?instance={instance_id}&action=instance.", token=root)
    assert {"instance.admin_suspend", "instance.admin_resume"} <= {e["action"] for e in family["entries"]}
    status, bad = await api.call("GET", "/api/admin/audit?since=yesterday", token=root)
    assert status == 400 and bad["error"]["field"] == "since"
    assert (await api.call("POST", "/api/admin/instances/00000000-0000-0000-0000-000000000000/suspend", {},
                           token=root))[0] == 404


async def test_an_admin_pages_through_the_users(api) -> None:
    root = await _admin(api)
    for number in range(3):
        await api.sign_up(f"user{number}@example.com")
    seen, after = [], ""
    while True:
        status, page = await api.call("GET", f"/api/admin/users?after={after}", token=root) if after else \
            await api.call("GET", "/api/admin/users", token=root)
        assert status == 200
        seen += [user["email"] for user in page["users"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert sorted(seen) == sorted(["root@example.com", "user0@example.com", "user1@example.com", "user2@example.com"])


async def test_a_broadcast_is_queued_and_its_progress_read(api) -> None:
    root = await _admin(api)
    status, bad = await api.call("POST", "/api/admin/broadcasts", {"text": "   "}, token=root)
    assert status == 400 and bad["error"]["field"] == "text"
    status, queued = await api.call("POST", "/api/admin/broadcasts", {"text": "Maintenance at 22:00 UTC."},
                                    token=root)
    assert status == 202 and queued["text"] == "Maintenance at 22:00 UTC." and queued["recipients"] == 0
    assert queued["done"]  # nobody has a chat with the bot here: nothing to send
    status, read = await api.call("GET", f"/api/admin/broadcasts/{queued['id']}", token=root)
    assert status == 200 and read == queued
    assert (await api.call("GET", "/api/admin/broadcasts/not-an-id", token=root))[0] == 404
