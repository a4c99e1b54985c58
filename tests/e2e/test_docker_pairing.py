"""The docker runtime's side of Telegram pairing, against the real engine and image: the
pending request is read from the container's own state database and the running gateway's
openclaw.json is replaced in its state volume, private to the node user as before."""

from __future__ import annotations

import json
import tarfile
import uuid
from datetime import UTC, datetime

import aiodocker

from provisioner.openclaw.pairing import with_owner
from provisioner.runtimes.docker import _run_in
from provisioner.runtimes.docker_spec import STATE_DIR, container_name
from tests.e2e.test_docker import _deploy, _rows, api, settings  # noqa: F401 (fixtures)
from tests.support.api_client import Api

# A request as OpenClaw's pairing store writes it, by the container's own Node.
ADD_REQUEST = """
const { DatabaseSync } = require("node:sqlite");
const db = new DatabaseSync(process.argv[1]);
db.prepare("INSERT INTO channel_pairing_requests VALUES ('telegram', 'default', ?, ?, ?, ?, '{}')")
  .run(process.argv[2], process.argv[3], process.argv[4], process.argv[4]);
"""


async def _config(container) -> tuple[dict, tarfile.TarInfo]:
    with await container.get_archive(f"{STATE_DIR}/openclaw.json") as archive:
        member = archive.getmember("openclaw.json")
        return json.load(archive.extractfile(member)), member


async def test_a_pending_code_is_found_in_the_container_and_its_sender_allowed(api: Api,
                                                                              docker: aiodocker.Docker) -> None:
    created = await _deploy(api)
    row = (await _rows(api))[0]
    runtime = api.platform.runtime
    container = await docker.containers.get(container_name(uuid.UUID(created["id"])))
    before, _ = await _config(container)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    added = await _run_in(container, ["node", "-e", ADD_REQUEST, f"{STATE_DIR}/state/openclaw.sqlite",
                                      "555000111", "HX7K2MQP", now])
    assert added.exit_code == 0, added.output

    assert await runtime.approve_pairing(row.id, row.runtime_state, "ZZZZ2222") is None
    assert (await _config(container))[0] == before
    assert await runtime.approve_pairing(row.id, row.runtime_state, "HX7K2MQP") == 555000111
    after, member = await _config(container)
    assert after == with_owner(before, 555000111)
    assert (member.uid, member.mode & 0o777) == (1000, 0o600)
    assert (await container.show())["State"]["Running"]
    assert await runtime.approve_pairing(uuid.uuid4(), {}, "HX7K2MQP") is None  # no such container
