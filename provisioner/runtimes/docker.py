"""The docker runtime (production): each instance is a hardened container of its own, on a
bridge network of its own, with its state in named volumes (provisioner/runtimes/docker_spec.py
says what is asked of the engine, and why).

Template methods, as DockerSpawner has them: `get_container`, `create_container`,
`start_container`, `stop_container`, `remove_container`; another engine overrides those only.
As in DockerSpawner, the container is found by what the instance's state records, and by the
deterministic name only when the state records none.
Containers are cattle: a start makes a fresh one from the current image and configuration, and
the volumes carry everything that must survive; the credentials volume is made afresh with each
container, so it holds exactly today's secrets (a changed bot token, one removed). The engine's
404 (gone) and 304/409 (already so) count as success.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiodocker
import structlog
from aiodocker.containers import DockerContainer
from aiodocker.volumes import DockerVolume

from provisioner.images.recipe import COMPILE_CACHE_LABEL
from provisioner.openclaw.gateway import build_gateway
from provisioner.openclaw.pairing import NODE_QUERY, REQUEST_QUERY, STATE_DB, sender_of, with_owner
from provisioner.runtimes.base import (ExecResult, GatewayState, LaunchRequest, Listed, Observed, ResourceUse,
                                       Runtime, Started)
from provisioner.runtimes.docker_spec import (
    BACKUPS_DIR,
    BACKUPS_WORK,
    GATEWAY_PORT,
    LABEL,
    CREDENTIALS_DIR,
    STATE_DIR,
    ContainerSpec,
    container_config,
    container_name,
    label_filter,
    maintenance_config,
    maintenance_name,
    network_config,
    network_name,
    placement,
    proxy_address,
    seed_config,
    seed_name,
    volume_config,
    volume_name,
)
from provisioner.runtimes.logfiles import LineCutter
from provisioner.runtimes import state_archives as archives
from provisioner.runtimes.subnets import DEFAULT_POOL, DEFAULT_PREFIX, next_subnet

log = structlog.get_logger(__name__)

STATE_VERSION = 1
NODE_UID = 1000
PREVIOUS_STATE = f"{BACKUPS_DIR}/work/state.previous"
# `openclaw backup` verifies SQLite snapshots in TMPDIR and wants 256 MiB to spare there (measured:
# the container's /tmp tmpfs is refused); the backups volume is on disk.
ON_DISK = {"TMPDIR": BACKUPS_WORK}  # the state a restore replaced, until its start succeeded
# Moves every entry of $2 (a directory) into $3, which is made empty first when $1 is "fresh"
# (GNU find and mv in the image; across volumes mv copies, then deletes).
MOVE_ALL = ('set -e; [ "$1" = fresh ] && rm -rf "$3" && mkdir -m 700 "$3"; '
            'find "$2" -mindepth 1 -maxdepth 1 -exec mv -t "$3" {} +')
_GONE, _ALREADY = 404, (304, 409)


@dataclass(frozen=True)
class DockerConfig:
    image: str
    version: str  # ClawFleet's, for the labels
    endpoint: str = "host"  # "host": 127.0.0.1:<port>; "network": the container's address (platform in a container)
    subnet_pool: str = DEFAULT_POOL
    subnet_prefix: int = DEFAULT_PREFIX
    join_container: str | None = None  # "network" mode: the platform's own container joins each instance network
    use_compile_cache: bool = True  # the benchmark turns it off to measure what it saves


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(self, docker: aiodocker.Docker, config: DockerConfig) -> None:
        self.docker = docker
        self.config = config

    async def close(self) -> None:
        await self.docker.close()

    # -- template methods (hooks another engine overrides) ----------------------------------------
    async def get_container(self, instance_id: uuid.UUID, state: dict[str, Any]) -> DockerContainer | None:
        try:
            container = await self.docker.containers.get(recorded_container(instance_id, state))
        except aiodocker.DockerError as exc:
            if exc.status == _GONE:
                return None
            raise
        return container

    async def create_container(self, spec: ContainerSpec, config_json: bytes) -> DockerContainer:
        container = await self.docker.containers.create(container_config(spec), name=container_name(spec.instance_id))
        await container.put_archive(STATE_DIR, _config_archive(config_json))  # before start: no secret in it
        await container.put_archive(BACKUPS_DIR, _private_archive({"work": None}))
        return container

    async def write_secret_files(self, request: LaunchRequest, files: dict[str, str]) -> None:
        """A fresh credentials volume holding exactly `files`, written through the seed container."""
        await self._remove_seed(request.instance_id)  # one left by a platform killed mid-way holds the volume
        await self._delete_volume(request.instance_id, "credentials")
        await self._ensure_volume(request, "credentials")
        seed = await self.docker.containers.create(
            seed_config(request.instance_id, request.owner_id, self.config.image, self.config.version),
            name=seed_name(request.instance_id))
        try:
            await seed.put_archive(CREDENTIALS_DIR, _secrets_archive(files))
        finally:
            await self.remove_container(seed)

    async def start_container(self, container: DockerContainer) -> None:
        try:
            await container.start()
        except aiodocker.DockerError as exc:
            if exc.status not in _ALREADY:
                raise

    async def stop_container(self, container: DockerContainer, timeout: float) -> None:
        try:
            await container.stop(t=max(1, int(timeout)))
        except aiodocker.DockerError as exc:
            if exc.status != _GONE and exc.status not in _ALREADY:
                raise

    async def remove_container(self, container: DockerContainer) -> None:
        try:
            await container.delete(force=True)
        except aiodocker.DockerError as exc:
            if exc.status != _GONE and exc.status not in _ALREADY:
                raise

    # -- contract ---------------------------------------------------------------------------------
    async def start(self, request: LaunchRequest, state: dict[str, Any]) -> Started:
        existing = await self.get_container(request.instance_id, state)
        if existing is not None:
            shown = await existing.show()
            if shown["State"]["Running"]:
                adopted = self._state_of(shown, request.port)
                return Started(self.endpoint(adopted), adopted)  # re-adopted, not started twice
            await self.remove_container(existing)  # a stopped one: made again from today's image and config
        proxy_from = await self._ensure_network(request)
        for purpose in ("state", "secrets", "backups"):
            await self._ensure_volume(request, purpose)
        gateway = build_gateway(request, placement(request.memory_mb, proxy_from))
        await self.write_secret_files(request, gateway.secret_files)
        spec = ContainerSpec(
            instance_id=request.instance_id, owner_id=request.owner_id, image=self.config.image,
            version=self.config.version, host_port=request.port, memory_mb=request.memory_mb, cpus=request.cpus,
            env=gateway.env, compile_cache=await self._compile_cache(),
        )
        container = await self.create_container(spec, json.dumps(gateway.config, indent=2).encode())
        await self.start_container(container)
        new_state = self._state_of(await container.show(), request.port)
        log.info("container started", instance_id=str(request.instance_id), container=new_state["container"])
        return Started(self.endpoint(new_state), new_state)

    async def stop(self, instance_id: uuid.UUID, state: dict[str, Any], timeout: float) -> None:
        container = await self.get_container(instance_id, state)
        if container is not None:
            await self.stop_container(container, timeout)

    async def status(self, instance_id: uuid.UUID, state: dict[str, Any]) -> Observed:
        container = await self.get_container(instance_id, state)
        if container is None:
            return Observed(GatewayState.GONE)
        shown = await container.show()
        if shown["State"]["Running"] and (not state.get("id") or shown["Id"] == state["id"]):
            return Observed(GatewayState.UP, f"container {shown['Name'].lstrip('/')}")
        return Observed(GatewayState.DOWN, shown["State"].get("Status", ""), exit_code=shown["State"].get("ExitCode"))

    async def list_all(self) -> list[Listed]:
        found = []
        for container in await self.docker.containers.list(filters=json.dumps(label_filter())):
            if container["Labels"].get(f"{LABEL}.role") == "maintenance":
                continue  # not a gateway: a backup or restore of a stopped one
            try:
                instance_id = uuid.UUID(container["Labels"][f"{LABEL}.instance"])
            except (KeyError, ValueError):
                continue
            port = next((p.get("PublicPort") for p in container["Ports"] or [] if p.get("PrivatePort") == GATEWAY_PORT
                         and p.get("PublicPort")), None)
            networks = (container["NetworkSettings"] or {}).get("Networks", {})
            name = container["Names"][0].lstrip("/")
            found.append(Listed(instance_id, Observed(GatewayState.UP, name), {
                "version": STATE_VERSION, "container": name, "id": container.id, "port": port,
                "address": networks.get(network_name(instance_id), {}).get("IPAddress"),
            }))
        return found

    async def sample(self, instance_id: uuid.UUID, state: dict[str, Any]) -> ResourceUse | None:
        """The engine's one-shot stats of the container (no second reading a second later):
        memory as the engine counts it against the limit (page cache excluded), and the
        container's CPU time."""
        try:
            stats = await self.docker._query_json(f"containers/{recorded_container(instance_id, state)}/stats",
                                                  params={"stream": "false", "one-shot": "true"})
        except aiodocker.DockerError:
            return None  # gone, or not running
        memory = stats.get("memory_stats") or {}
        cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        if "usage" not in memory or cpu is None:
            return None  # a stopped container's stats are empty
        cache = (memory.get("stats") or {}).get("inactive_file", 0)
        return ResourceUse(memory_bytes=max(0, memory["usage"] - cache), cpu_seconds=cpu / 1e9)

    def endpoint(self, state: dict[str, Any]) -> str:
        if self.config.endpoint == "network":
            return f"http://{state['address']}:{GATEWAY_PORT}"
        return f"http://127.0.0.1:{state['port']}"

    def matches(self, found: dict[str, Any], state: dict[str, Any]) -> bool:
        return found.get("id") is not None and found.get("id") == state.get("id")

    async def logs(self, instance_id: uuid.UUID, state: dict[str, Any], tail: int,
                   follow: bool) -> AsyncIterator[str]:
        container = await self.get_container(instance_id, state)
        if container is None:
            return
        # The engine sends what the container wrote in frames, not lines: a line (and a secret
        # in it) may span two frames, so lines are put back together before anyone sees them.
        cutter = LineCutter()
        if follow:
            async with contextlib.aclosing(container.log(stdout=True, stderr=True, follow=True, tail=tail)) as chunks:
                async for chunk in chunks:
                    for line in cutter.feed(chunk.encode()):
                        yield line
        else:
            for chunk in await container.log(stdout=True, stderr=True, tail=tail):
                for line in cutter.feed(chunk.encode()):
                    yield line
        for line in cutter.rest():  # the container's last words, when they did not end a line
            yield line

    async def exec(self, instance_id: uuid.UUID, state: dict[str, Any], argv: list[str]) -> ExecResult:
        """In the gateway's container while it runs, else in a maintenance container over its volumes
        (none for an instance that has no state volume: nothing to run against, and nothing made)."""
        if not await self._has_volume(instance_id, "state"):
            return ExecResult(1, "this instance has no state here yet")
        async with self._shell(instance_id, state) as container:
            return await _run_in(container, ["node", "openclaw.mjs", *argv])

    async def _has_volume(self, instance_id: uuid.UUID, purpose: str) -> bool:
        try:
            await DockerVolume(self.docker, volume_name(instance_id, purpose)).show()
        except aiodocker.DockerError as exc:
            if exc.status == _GONE:
                return False
            raise
        return True

    # -- instance backups ---------------------------------------------------------------------------
    async def archive_state(self, instance_id: uuid.UUID, state: dict[str, Any]) -> AsyncIterator[bytes]:
        async with self._shell(instance_id, state) as container:
            archive = f"{BACKUPS_WORK}/{archives.scratch_name()}.tar.gz"
            try:
                made = await _run_in(container, ["node", "openclaw.mjs", *archives.create_argv(archive)], ON_DISK)
                archives.check("backup create", made.exit_code, made.output)
                async for chunk in _output_of(container, ["cat", archive]):
                    yield chunk
            finally:
                await _run_in(container, ["rm", "-rf", archive])

    async def unpack_state(self, instance_id: uuid.UUID, state: dict[str, Any], archive: AsyncIterator[bytes],
                           size: int) -> None:
        async with self._maintenance(instance_id) as container:
            work = f"{BACKUPS_WORK}/{archives.scratch_name()}"
            try:
                await _run_in(container, ["mkdir", "-m", "700", work])
                await container.put_archive(work, _one_file_tar(archives.ARCHIVE_NAME, archive, size))
                target = f"{work}/restored"
                restored = await _run_in(container, ["node", "openclaw.mjs",
                                                     *archives.restore_argv(f"{work}/{archives.ARCHIVE_NAME}", target)], ON_DISK)
                archives.check("backup restore", restored.exit_code, restored.output)
                listing = await _run_in(container, ["ls", "-A", target])
                manifest = await _run_in(container, ["cat", f"{target}/{archives.manifest_name(listing.output.split())}"])
                new_state = str(PurePosixPath(target) / archives.state_asset(archives.parse_manifest(manifest.output)))
                moved = await _run_in(container, ["sh", "-c", MOVE_ALL, "sh", "fresh", STATE_DIR, PREVIOUS_STATE])
                archives.check("moving the state aside", moved.exit_code, moved.output)
                moved = await _run_in(container, ["sh", "-c", MOVE_ALL, "sh", "into", new_state, STATE_DIR])
                archives.check("moving the restored state in", moved.exit_code, moved.output)
            finally:
                await _run_in(container, ["rm", "-rf", work])

    async def settle_state(self, instance_id: uuid.UUID, state: dict[str, Any], keep_restored: bool) -> None:
        async with self._maintenance(instance_id) as container:
            if (await _run_in(container, ["test", "-d", PREVIOUS_STATE])).exit_code != 0:
                return
            if not keep_restored:
                cleared = await _run_in(container, ["find", STATE_DIR, "-mindepth", "1", "-maxdepth", "1",
                                                    "-exec", "rm", "-rf", "{}", "+"])
                archives.check("clearing the restored state", cleared.exit_code, cleared.output)
                moved = await _run_in(container, ["sh", "-c", MOVE_ALL, "sh", "into", PREVIOUS_STATE, STATE_DIR])
                archives.check("putting the previous state back", moved.exit_code, moved.output)
            await _run_in(container, ["rm", "-rf", PREVIOUS_STATE])

    @contextlib.asynccontextmanager
    async def _shell(self, instance_id: uuid.UUID, state: dict[str, Any]) -> AsyncIterator[DockerContainer]:
        """The gateway's own container while it runs, else a maintenance container."""
        container = await self.get_container(instance_id, state)
        if container is not None and (await container.show())["State"]["Running"]:
            yield container
            return
        async with self._maintenance(instance_id) as maintenance:
            yield maintenance

    @contextlib.asynccontextmanager
    async def _maintenance(self, instance_id: uuid.UUID) -> AsyncIterator[DockerContainer]:
        """A maintenance container over the instance's volumes (made when missing), removed after."""
        name = maintenance_name(instance_id)
        await self.remove_container(self.docker.containers.container(name))  # one a killed platform left
        for purpose in ("state", "secrets", "backups"):
            await self.docker.volumes.create(volume_config(instance_id, None, self.config.version, purpose))
        container = await self.docker.containers.create(
            maintenance_config(instance_id, self.config.image, self.config.version), name=name)
        try:
            await container.put_archive(BACKUPS_DIR, _private_archive({"work": None}))
            await container.start()
            yield container
        finally:
            await self.remove_container(container)

    async def approve_pairing(self, instance_id: uuid.UUID, state: dict[str, Any], code: str) -> int | None:
        container = await self.get_container(instance_id, state)
        if container is None:
            return None
        # The state database is read where it lives, by the gateway's own Node (node:sqlite), so
        # a request still in its write-ahead log is seen too.
        found = await _run_in(container, ["node", "-e", NODE_QUERY, f"{STATE_DIR}/{STATE_DB}", code, REQUEST_QUERY])
        if found.exit_code != 0:
            raise RuntimeError(f"reading the pairing store failed: {found.output.strip()[-300:]}")
        sender = sender_of(json.loads(found.output.strip().splitlines()[-1]), datetime.now(UTC))
        if sender is not None:
            with await container.get_archive(f"{STATE_DIR}/openclaw.json") as archive:
                config = json.load(archive.extractfile("openclaw.json"))
            patched = json.dumps(with_owner(config, sender), indent=2).encode()
            await container.put_archive(STATE_DIR, _private_archive({"openclaw.json": patched}))
        return sender

    async def remove(self, instance_id: uuid.UUID, state: dict[str, Any], keep_data: bool) -> None:
        container = await self.get_container(instance_id, state)
        if container is not None:
            await self.stop_container(container, 10)
            await self.remove_container(container)
        await self._delete_network(instance_id)
        await self._remove_seed(instance_id)
        await self._delete_volume(instance_id, "credentials")  # always: the database keeps the secrets
        await self._delete_volume(instance_id, "backups")  # only archives on their way
        if not keep_data:  # kept volumes still carry their labels: found again for a restore
            for purpose in ("state", "secrets"):
                await self._delete_volume(instance_id, purpose)

    async def discard_kept_data(self, instance_id: uuid.UUID) -> None:
        for purpose in ("state", "secrets"):
            await self._delete_volume(instance_id, purpose)

    # -- helpers ----------------------------------------------------------------------------------
    async def _compile_cache(self) -> str | None:
        """The image's filled compile cache, asked at each start: an upgraded image may differ.
        An image without one (built elsewhere) runs with OpenClaw's own cache in /tmp."""
        if not self.config.use_compile_cache:
            return None
        shown = await self.docker.images.inspect(self.config.image)
        return ((shown.get("Config") or {}).get("Labels") or {}).get(COMPILE_CACHE_LABEL) or None

    def _state_of(self, shown: dict, port: int) -> dict[str, Any]:
        networks = shown.get("NetworkSettings", {}).get("Networks", {})
        address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
        return {"version": STATE_VERSION, "container": shown["Name"].lstrip("/"), "id": shown["Id"],
                "port": port, "address": address}

    async def _ensure_network(self, request: LaunchRequest) -> str | None:
        """The instance's network, made when missing (and joined by the platform's container in
        "network" mode); answers the address the platform's proxy reaches the gateway from there."""
        name = network_name(request.instance_id)
        try:
            network = await self.docker.networks.get(name)
        except aiodocker.DockerError as exc:
            if exc.status != _GONE:
                raise
            await self._create_network(request)
            network = await self.docker.networks.get(name)
        if self.config.join_container:
            try:
                await network.connect({"Container": self.config.join_container})
            except aiodocker.DockerError as exc:
                if exc.status not in (*_ALREADY, 403):  # 403: already connected
                    raise
        return proxy_address(await network.show(), self.config.join_container)

    async def _create_network(self, request: LaunchRequest) -> None:
        for attempt in range(3):  # two starts at once may pick the same free subnet: the loser picks again
            taken = [config["Subnet"] for network in await self.docker.networks.list()
                     for config in (network.get("IPAM", {}).get("Config") or []) if "Subnet" in config]
            subnet = next_subnet(self.config.subnet_pool, self.config.subnet_prefix, taken)
            try:
                await self.docker.networks.create(
                    network_config(request.instance_id, request.owner_id, self.config.version, subnet,
                                   shared_with_platform=bool(self.config.join_container)))
                return
            except aiodocker.DockerError as exc:
                if exc.status in _ALREADY:
                    return
                if "overlap" not in str(exc.message).lower() or attempt == 2:
                    raise

    async def _delete_network(self, instance_id: uuid.UUID) -> None:
        try:
            network = await self.docker.networks.get(network_name(instance_id))
            if self.config.join_container:
                try:
                    await network.disconnect({"Container": self.config.join_container, "Force": True})
                except aiodocker.DockerError:
                    pass
            await network.delete()
        except aiodocker.DockerError as exc:
            if exc.status != _GONE:
                raise

    async def _delete_volume(self, instance_id: uuid.UUID, purpose: str) -> None:
        try:
            await DockerVolume(self.docker, volume_name(instance_id, purpose)).delete()
        except aiodocker.DockerError as exc:
            if exc.status != _GONE:
                raise

    async def _remove_seed(self, instance_id: uuid.UUID) -> None:
        await self.remove_container(self.docker.containers.container(seed_name(instance_id)))

    async def _ensure_volume(self, request: LaunchRequest, purpose: str) -> None:
        # creating an existing volume returns it unchanged: nothing in it is lost
        await self.docker.volumes.create(volume_config(request.instance_id, request.owner_id, self.config.version,
                                                       purpose))


def recorded_container(instance_id: uuid.UUID, state: dict[str, Any]) -> str:
    """What to ask the engine for: the container the state records (by name: a container started
    but not yet recorded has a new id and the same name), else the deterministic name."""
    return state.get("container") or state.get("id") or container_name(instance_id)


async def _run_in(container: DockerContainer, argv: list[str], env: dict[str, str] | None = None) -> ExecResult:
    """Run a command in a running container as the node user: its exit code and output."""
    execution = await container.exec(argv, user=f"{NODE_UID}:{NODE_UID}",
                                     environment=[f"{k}={v}" for k, v in (env or {}).items()] or None)
    output = bytearray()
    async with execution.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            output += message.data
    return ExecResult((await execution.inspect()).get("ExitCode") or 0, output.decode(errors="replace"))


async def _output_of(container: DockerContainer, argv: list[str]) -> AsyncIterator[bytes]:
    """What a command writes to stdout, streamed as it comes; an error if it fails."""
    execution = await container.exec(argv, user=f"{NODE_UID}:{NODE_UID}")
    errors = bytearray()
    async with execution.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            if message.stream == 1:
                yield message.data
            else:
                errors += message.data
    exit_code = (await execution.inspect()).get("ExitCode") or 0
    archives.check(argv[0], exit_code, errors.decode(errors="replace"))


async def _one_file_tar(name: str, content: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """A tar stream of one file (the node user's, 0600) for the engine's archive upload."""
    yield archives.tar_header(name, size, NODE_UID)
    written = 0
    async for chunk in content:
        written += len(chunk)
        yield chunk
    if written != size:
        raise ValueError(f"the archive was {written} bytes, not the {size} recorded")
    yield archives.tar_end(size)


def _config_archive(config_json: bytes) -> bytes:
    """openclaw.json (mode 0600) and an empty logs/ directory, owned by the node user."""
    return _private_archive({"logs": None, "openclaw.json": config_json})


def _secrets_archive(files: dict[str, str]) -> bytes:
    """The secret files (0600, owned by the node user). The volume's root stays the engine's own
    (root, 0755): the gateway can read its files there but add none."""
    return _private_archive({name: content.encode() for name, content in files.items()})


def _private_archive(entries: dict[str, bytes | None]) -> bytes:
    """A tar of directories (None, mode 0700) and files (mode 0600), all owned by the node user."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in entries.items():
            entry = tarfile.TarInfo(name)
            entry.uid, entry.gid, entry.mtime = NODE_UID, NODE_UID, time.time()
            if content is None:
                entry.type, entry.mode = tarfile.DIRTYPE, 0o700
                archive.addfile(entry)
            else:
                entry.size, entry.mode = len(content), 0o600
                archive.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()
