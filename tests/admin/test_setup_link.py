"""The setup link the platform logs at start while no admin exists: signing up through it makes
that account the admin, it works once, and a restart while still no admin exists voids it for a
new one; once an admin exists, no link is logged."""

from __future__ import annotations

import re
from contextlib import AsyncExitStack

from tests.support.api_client import running_api
from tests.support.log_capture import platform_logs
from tests.support.memory_runtime import MemoryRuntime
from tests.support.web_client import WebUser

LINK = re.compile(r"url='?(http\S+?/admin/setup\?token=(setup-[0-9a-f]+))")


async def _started(settings) -> tuple[str | None, str]:
    """Start the platform, and stop it again: the setup link's token it logged, if any."""
    runtime = MemoryRuntime()
    with platform_logs("INFO") as logs:
        async with running_api(settings, runtime):
            pass
    await runtime.close()
    found = LINK.search(logs.getvalue())
    return (found.group(2) if found else None), logs.getvalue()


async def test_the_logged_setup_link_makes_an_admin_once_and_a_restart_voids_it(settings_for, sessions) -> None:
    settings = settings_for()
    voided, _ = await _started(settings)
    runtime = MemoryRuntime()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(runtime.close)
        with platform_logs("INFO") as logs:
            api = await stack.enter_async_context(running_api(settings, runtime))
        token = LINK.search(logs.getvalue()).group(2)
        assert voided and token != voided and "no admin yet" in logs.getvalue()
        newcomer, other = WebUser(api), WebUser(api)
        stack.push_async_callback(newcomer.close)
        stack.push_async_callback(other.close)

        old = await newcomer.get(f"/admin/setup?token={voided}")
        assert old.status == 404 and old.has("voided by a restart")
        opened = await newcomer.get(f"/admin/setup?token={token}")
        assert opened.status == 200 and opened.has("Create an account")
        assert "/signup?next=%2Fadmin%2Fsetup%3Ftoken%3D" in opened.text
        back = f"/admin/setup?token={token}"
        signup = await newcomer.get("/signup")
        landed = await newcomer.post("/signup", {"email": "root@example.com", "password": "correct horse battery",
                                                 "next": back}, csrf=signup.csrf)
        assert landed.url.endswith(back) and landed.has("Make me the admin")
        made = await newcomer.post("/admin/setup", {"token": token}, csrf=landed.csrf)
        assert made.url.endswith("/admin/users?done=admin") and made.has("You are an admin now")

        await other.sign_up("eve@example.com")
        assert (await other.get(f"/admin/setup?token={token}")).status == 404  # used up
        again = await other.post("/admin/setup", {"token": token}, csrf=(await other.get("/dashboard")).csrf)
        assert again.status == 400 and (await other.get("/admin/users")).status == 404

    assert (await _started(settings))[0] is None  # an admin exists: no link
