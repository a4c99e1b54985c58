"""One instance-backup round trip with the docker runtime on the real engine and image: the
archive is made in the running container and streamed out of its backups volume; the restore
runs in a maintenance container over the instance's volumes, which is gone afterwards."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import aiodocker

from provisioner.openclaw.pairing import NODE_QUERY, REQUEST_QUERY
from provisioner.runtimes.docker import _run_in
from provisioner.runtimes.docker_spec import STATE_DIR, container_name, label_filter
from tests.e2e.test_docker import _deploy, api, settings  # noqa: F401 (fixtures)
from tests.e2e.test_docker_pairing import ADD_REQUEST
from tests.support.api_client import Api

MARKER = "a note only the backed-up state has, 91c2"
NOTE = f"{STATE_DIR}/workspace/notes.md"
DATABASE = f"{STATE_DIR}/state/openclaw.sqlite"


async def _done(api: Api, instance_id: str) -> list[dict]:
    events = await api.progress(instance_id, timeout=400)
    assert events[-1]["done"], events
    return events


async def _request_sender(container, code: str) -> str | None:
    found = await _run_in(container, ["node", "-e", NODE_QUERY, DATABASE, code, REQUEST_QUERY])
    row = json.loads(found.output.strip().splitlines()[-1])
    return row[0] if row else None


async def test_backup_change_restore_in_containers(api: Api, docker: aiodocker.Docker, settings) -> None:
    created = await _deploy(api)
    instance_id = created["id"]
    container = await docker.containers.get(container_name(uuid.UUID(instance_id)))
    wrote = await _run_in(container, ["sh", "-c", f'mkdir -p "$(dirname {NOTE})" && printf %s "$1" > {NOTE}',
                                      "sh", MARKER])
    assert wrote.exit_code == 0, wrote.output
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    added = await _run_in(container, ["node", "-e", ADD_REQUEST, DATABASE, "555000222", "QX7K2MQP", now])
    assert added.exit_code == 0, added.output

    assert (await api.call("POST", f"/api/instances/{instance_id}/backups"))[0] == 202
    await _done(api, instance_id)
    backup = (await api.call("GET", f"/api/instances/{instance_id}/backups"))[1]["backups"][0]
    stored = (settings.data_dir / "instance-backups" / instance_id / f"{backup['id']}.cfib").read_bytes()
    assert MARKER.encode() not in stored and backup["size"] > 1000

    changed = await _run_in(container, ["sh", "-c", f"rm {NOTE}"])
    assert changed.exit_code == 0
    await _run_in(container, ["node", "-e", "const {DatabaseSync}=require('node:sqlite');"
                              "new DatabaseSync(process.argv[1]).exec('DELETE FROM channel_pairing_requests')",
                              DATABASE])
    assert await _request_sender(container, "QX7K2MQP") is None

    status, _ = await api.call("POST", f"/api/instances/{instance_id}/backups/{backup['id']}/restore",
                               {"target": "same"})
    assert status == 202
    events = await _done(api, instance_id)
    assert events[-1]["step"] == "restored", events
    container = await docker.containers.get(container_name(uuid.UUID(instance_id)))  # a fresh one
    assert (await _run_in(container, ["cat", NOTE])).output == MARKER
    assert await _request_sender(container, "QX7K2MQP") == "555000222"
    assert (await api.call("GET", f"/api/instances/{instance_id}"))[1]["status"] == "running"
    leftovers = await docker.containers.list(all=True, filters=json.dumps(label_filter(role="maintenance")))
    assert leftovers == []
