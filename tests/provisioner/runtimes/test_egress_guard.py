"""The egress guard: its rules as data, and what they do on the real host firewall to a real
container on a network from the pool.

The world beyond the host is a network namespace this test makes, holding the metadata service's
address (169.254.169.254) and one ordinary address (198.18.0.2), each with a TCP listener; the
host side listens on the container network's gateway address. Nothing leaves the machine. The
rules use a pool and chain names of their own, apart from those of a platform running here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import subprocess
import sys
import uuid

import aiodocker
import pytest

from clawfleet.runtime import RuntimeUnavailable, guard_egress
from clawfleet.settings import Settings
from provisioner.runtimes.docker_spec import network_config
from provisioner.runtimes.egress import (
    EgressRules,
    install,
    installed,
    remove,
    unsupported_reason,
)
from tests.support.services import service_missing

SUBNET = "10.214.0.0/28"  # outside the platform's default pool: a running platform's rules stay as they are
METADATA, ELSEWHERE = "169.254.169.254", "198.18.0.2"
REFUSE = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]


def test_the_rules_send_only_the_pools_traffic_into_our_chains() -> None:
    rules = EgressRules("10.213.0.0/16", ("169.254.0.0/16", "10.0.0.0/8"))
    replies = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"]
    assert rules.chains() == {
        "CLAWFLEET-EGRESS": [replies, ["-d", "169.254.0.0/16", *REFUSE], ["-d", "10.0.0.0/8", *REFUSE]],
        "CLAWFLEET-HOST": [replies, ["-p", "udp", "--dport", "53", "-j", "RETURN"],
                           ["-p", "tcp", "--dport", "53", "-j", "RETURN"], REFUSE],
    }
    assert rules.jumps() == [("DOCKER-USER", ["-s", "10.213.0.0/16", "-j", "CLAWFLEET-EGRESS"]),
                             ("INPUT", ["-s", "10.213.0.0/16", "-j", "CLAWFLEET-HOST"])]


def test_the_model_gateways_port_is_the_one_host_port_instances_may_reach() -> None:
    host = EgressRules("10.213.0.0/16", open_ports=(8090,)).chains()["CLAWFLEET-HOST"]
    assert host[-2:] == [["-p", "tcp", "--dport", "8090", "-j", "RETURN"], REFUSE]


def test_the_restore_input_declares_and_fills_our_chains_only() -> None:
    text = EgressRules("10.213.0.0/16").restore_input()
    lines = text.splitlines()
    assert lines[:3] == ["*filter", ":CLAWFLEET-EGRESS - [0:0]", ":CLAWFLEET-HOST - [0:0]"]
    assert lines[-1] == "COMMIT" and text.endswith("\n")
    assert "-A CLAWFLEET-EGRESS -d 169.254.0.0/16 -j REJECT --reject-with icmp-admin-prohibited" in lines
    assert not any(line.startswith(("-A INPUT", "-A DOCKER-USER", ":INPUT", ":DOCKER-USER")) for line in lines)


def test_the_printed_script_is_valid_shell_with_the_same_rules() -> None:
    script = EgressRules("10.213.0.0/16").script()
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    assert "iptables -w -A CLAWFLEET-EGRESS -d 169.254.0.0/16 -j REJECT --reject-with icmp-admin-prohibited" in script
    assert ("iptables -w -C INPUT -s 10.213.0.0/16 -j CLAWFLEET-HOST 2>/dev/null || "
            "iptables -w -I INPUT 1 -s 10.213.0.0/16 -j CLAWFLEET-HOST") in script


def test_the_command_prints_the_rules_of_the_configured_pool(tmp_path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAWFLEET_")}
    env |= {"CLAWFLEET_DOCKER_SUBNET_POOL": "10.77.0.0/16", "CLAWFLEET_DOCKER_EGRESS_DENY": "169.254.0.0/16,10.0.0.0/8"}
    done = subprocess.run([sys.executable, "-m", "clawfleet.cli", "egress-guard", "--print"], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # the model gateway's default port is the one host port left open to instances
    assert done.stdout == EgressRules("10.77.0.0/16", ("169.254.0.0/16", "10.0.0.0/8"), open_ports=(8090,)).script()
    bad = subprocess.run([sys.executable, "-m", "clawfleet.cli", "egress-guard", "--print"], cwd=tmp_path,
                         env={**env, "CLAWFLEET_DOCKER_EGRESS_DENY": "the metadata service"}, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "CLAWFLEET_DOCKER_EGRESS_DENY" in bad.stderr.upper(), bad.stderr


def test_a_remote_engine_is_not_guarded_from_here() -> None:
    assert "another host" in unsupported_reason("tcp://10.0.0.5:2376")


async def test_required_refuses_to_run_gateways_without_the_guard(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, runtime="docker", docker_url="tcp://10.0.0.5:2376",
                        docker_egress_guard="required")
    with pytest.raises(RuntimeUnavailable, match="egress guard cannot be installed.*another host"):
        await guard_egress(settings)


def test_denied_networks_are_checked_when_the_settings_load(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, docker_egress_deny="169.254.0.0/16, 192.168.1.7/24")
    assert settings.docker_egress_deny == ["169.254.0.0/16", "192.168.1.0/24"]
    with pytest.raises(ValueError, match="item 2"):
        Settings(_env_file=None, data_dir=tmp_path, docker_egress_deny="169.254.0.0/16,metadata")


# -- on the real firewall ----------------------------------------------------------------------

def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def outside_world():
    """A namespace behind a veth pair: 169.254.169.254 and 198.18.0.2 listen on port 80."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        service_missing("the egress guard's test needs root, iproute2 and iptables")
    name, tag = f"cf-egress-{os.getpid()}", f"{os.getpid() % 100000}"
    _sh("ip", "netns", "add", name)
    server = None
    try:
        _sh("ip", "link", "add", f"cfe{tag}h", "type", "veth", "peer", "name", f"cfe{tag}n")
        _sh("ip", "link", "set", f"cfe{tag}n", "netns", name)
        for address in ("169.254.169.253/30", "198.18.0.1/30"):
            _sh("ip", "addr", "add", address, "dev", f"cfe{tag}h")
        _sh("ip", "link", "set", f"cfe{tag}h", "up")
        for address in (f"{METADATA}/30", f"{ELSEWHERE}/30"):
            _sh("ip", "-n", name, "addr", "add", address, "dev", f"cfe{tag}n")
        _sh("ip", "-n", name, "link", "set", f"cfe{tag}n", "up")
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", _ACCEPTOR, "80"],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert server.stdout.readline().strip() == b"listening"
        yield
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", name], capture_output=True)  # takes the veth pair with it


_ACCEPTOR = """
import socket, sys
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("listening", flush=True)
while True:
    connection, _ = server.accept()
    connection.close()
"""

_PROBE = """
const net = require('net');
const tries = process.argv.slice(1).map(target => new Promise(done => {
  const [host, port] = target.split(':');
  const s = net.connect({host, port: Number(port), timeout: 4000});
  s.on('connect', () => { s.destroy(); done(target + ' CONNECTED'); });
  s.on('timeout', () => { s.destroy(); done(target + ' TIMEOUT'); });
  s.on('error', e => done(target + ' ERROR ' + e.code));
}));
Promise.all(tries).then(lines => console.log(lines.join('\\n')));
"""


@pytest.fixture
async def pool_network(docker):
    """A network from the guarded pool, made as the docker runtime makes an instance's; its gateway address."""
    network = await docker.networks.create(network_config(uuid.uuid4(), None, "test", SUBNET))
    try:
        # the engine leaves Gateway out when only the subnet was asked for: it is the first address
        yield network.id, str(ipaddress.ip_network(SUBNET)[1])
    finally:
        await network.delete()


async def _probe(docker: aiodocker.Docker, image: str, network: str, targets: dict[str, str]) -> dict[str, str]:
    container = await docker.containers.create({
        "Image": image, "User": "1000:1000", "Entrypoint": ["node", "-e", _PROBE], "Cmd": list(targets.values()),
        "HostConfig": {"NetworkMode": network, "CapDrop": ["ALL"]},
    })
    try:
        await container.start()
        await container.wait(timeout=60)
        said = "".join(await container.log(stdout=True, stderr=True)).split("\n")
    finally:
        await container.delete(force=True)
    results = dict(line.strip().split(" ", 1) for line in said if line.strip())
    return {name: results.get(target, "no answer: " + "|".join(said)) for name, target in targets.items()}


async def _host_listener(address: str, port: int) -> asyncio.Server:
    async def close(_reader, writer) -> None:
        writer.close()

    return await asyncio.start_server(close, address, port)


async def test_the_guard_refuses_metadata_and_the_host_but_not_the_world(docker, openclaw_image,
                                                                          outside_world, pool_network) -> None:
    network, gateway = pool_network
    listeners = [await _host_listener(gateway, 0), await _host_listener(gateway, 53), await _host_listener(gateway, 0)]
    host_port, model_port = (listeners[i].sockets[0].getsockname()[1] for i in (0, 2))
    targets = {"metadata": f"{METADATA}:80", "elsewhere": f"{ELSEWHERE}:80", "host": f"{gateway}:{host_port}",
               "host_dns": f"{gateway}:53", "model_gateway": f"{gateway}:{model_port}"}
    rules = EgressRules(SUBNET, prefix="CFTEST", open_ports=(model_port,))
    try:
        assert set((await _probe(docker, openclaw_image, network, targets)).values()) == {"CONNECTED"}
        try:
            await install(rules)
            await install(rules)  # again, as at every platform start: nothing doubles
            assert await installed(rules)
            docker_user = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
            assert docker_user.count("-j CFTEST-EGRESS") == 1
            guarded = await _probe(docker, openclaw_image, network, targets)
            assert guarded["elsewhere"] == "CONNECTED" and guarded["host_dns"] == "CONNECTED", guarded
            assert guarded["model_gateway"] == "CONNECTED", guarded  # the one host port left open
            # refused at once (REJECT), not left to time out
            assert guarded["metadata"].startswith("ERROR") and guarded["host"].startswith("ERROR"), guarded
        finally:
            await remove(rules)
        assert not await installed(rules)
        assert set((await _probe(docker, openclaw_image, network, targets)).values()) == {"CONNECTED"}
    finally:
        for listener in listeners:
            listener.close()
