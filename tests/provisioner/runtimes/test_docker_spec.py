"""The docker runtime's requests to the engine, as pure data: names, labels, container, host
and network configuration, and the subnet pool."""

from __future__ import annotations

import re
import uuid

import pytest

from provisioner.openclaw.gateway import placement_env
from provisioner.runtimes.docker_spec import (
    ContainerSpec,
    container_config,
    container_name,
    heap_mb,
    label_filter,
    labels,
    network_config,
    network_name,
    placement,
    proxy_address,
    seed_config,
    seed_name,
    volume_name,
)
from provisioner.runtimes.subnets import PoolExhausted, next_subnet

INSTANCE = uuid.UUID("5b0d6f2e-8a51-4a07-9a52-2f3c1c7e9d10")
OWNER = uuid.UUID("0e9c6a40-1f7b-4d6e-8c39-3b2a6f9e1d22")


def test_names_are_deterministic_dns_safe_and_distinct() -> None:
    other = uuid.UUID("7d1e2a60-0000-4000-8000-000000000001")
    assert container_name(INSTANCE) == container_name(INSTANCE)
    names = {container_name(INSTANCE), network_name(INSTANCE), volume_name(INSTANCE, "state"),
             volume_name(INSTANCE, "secrets"), volume_name(INSTANCE, "credentials"), seed_name(INSTANCE),
             container_name(other)}
    assert len(names) == 7
    assert all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name) for name in names)


def test_the_container_is_hardened_and_labelled() -> None:
    spec = ContainerSpec(INSTANCE, OWNER, "clawfleet/openclaw:2026.9.6", "0.1.0", host_port=20007,
                         memory_mb=1536, cpus=1.5,
                         env={**placement_env(placement(1536)), "OPENAI_API_KEY": "sk-proj-x"},
                         compile_cache="/app/compile-cache")
    net = network_name(INSTANCE)
    assert container_config(spec) == {
        "Image": "clawfleet/openclaw:2026.9.6",
        "Hostname": container_name(INSTANCE),
        "User": "1000:1000",
        "Env": [
            "HOME=/home/node",
            "NODE_COMPILE_CACHE=/app/compile-cache",
            "NODE_OPTIONS=--max-old-space-size=1152 --max-semi-space-size=8",
            "OPENAI_API_KEY=sk-proj-x",
            "OPENCLAW_CONFIG_PATH=/home/node/.openclaw/openclaw.json",
            "OPENCLAW_STATE_DIR=/home/node/.openclaw",
            "TMPDIR=/tmp",
            "XDG_CACHE_HOME=/home/node/.cache",
        ],
        "Cmd": ["node", "openclaw.mjs", "gateway", "run"],
        "ExposedPorts": {"18789/tcp": {}},
        "Labels": {"clawfleet.managed": "true", "clawfleet.instance": str(INSTANCE), "clawfleet.owner": str(OWNER),
                   "clawfleet.version": "0.1.0"},
        "StopSignal": "SIGTERM",
        "HostConfig": {
            "NetworkMode": net,
            "PortBindings": {"18789/tcp": [{"HostIp": "127.0.0.1", "HostPort": "20007"}]},
            "Mounts": [
                {"Type": "volume", "Source": volume_name(INSTANCE, "state"), "Target": "/home/node/.openclaw"},
                {"Type": "volume", "Source": volume_name(INSTANCE, "secrets"), "Target": "/home/node/.config/openclaw"},
                # the gateway's secret files: read-only for it, written by the seed container
                {"Type": "volume", "Source": volume_name(INSTANCE, "credentials"), "Target": "/run/secrets",
                 "ReadOnly": True},
                # instance backups written there, outside the state dir, then streamed out
                {"Type": "volume", "Source": volume_name(INSTANCE, "backups"), "Target": "/home/node/backups"},
            ],
            "Tmpfs": {"/tmp": "rw,nosuid,nodev,size=256m",
                      "/home/node/.cache": "rw,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0700"},
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "PidsLimit": 512,
            "Memory": 1536 * 1024 * 1024,
            "MemorySwap": 1536 * 1024 * 1024,
            "NanoCpus": 1_500_000_000,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
            "RestartPolicy": {"Name": "no"},
            "Init": False,
        },
        "NetworkingConfig": {"EndpointsConfig": {net: {}}},
    }


def test_the_seed_container_holds_only_the_credentials_volume_and_runs_nothing() -> None:
    assert seed_config(INSTANCE, OWNER, "clawfleet/openclaw:2026.9.6", "0.1.0") == {
        "Image": "clawfleet/openclaw:2026.9.6",
        "User": "1000:1000",
        "Cmd": ["true"],  # never started: the engine writes the files while it is only created
        "Labels": labels(INSTANCE, OWNER, "0.1.0"),
        "HostConfig": {
            "NetworkMode": "none",
            "Mounts": [{"Type": "volume", "Source": volume_name(INSTANCE, "credentials"), "Target": "/run/secrets"}],
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
        },
    }


def test_nothing_mounts_the_docker_socket() -> None:
    config = container_config(ContainerSpec(INSTANCE, None, "image", "0.1.0", 20000, 1024, 1.0))
    assert "docker.sock" not in repr(config) and "Binds" not in config["HostConfig"]
    assert "clawfleet.owner" not in config["Labels"]


@pytest.mark.parametrize(("memory_mb", "heap"), [(1536, 1152), (1024, 768), (2048, 1536), (100, 128)])
def test_nodes_heap_stays_below_the_memory_limit(memory_mb: int, heap: int) -> None:
    assert heap_mb(memory_mb) == heap


def test_the_gateway_reads_the_images_compile_cache_when_it_has_one() -> None:
    plain = ContainerSpec(INSTANCE, OWNER, "img", "0.1.0", host_port=20007, memory_mb=1536, cpus=1)
    assert not any(entry.startswith("NODE_COMPILE_CACHE=") for entry in container_config(plain)["Env"])


def test_each_instance_gets_a_bridge_of_its_own_from_the_pool() -> None:
    assert network_config(INSTANCE, OWNER, "0.1.0", "10.213.0.16/28") == {
        "Name": network_name(INSTANCE),
        "Driver": "bridge",
        "CheckDuplicate": True,
        "Internal": False,
        "Labels": labels(INSTANCE, OWNER, "0.1.0"),
        "Options": {"com.docker.network.bridge.enable_icc": "false"},
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.213.0.16/28"}]},
    }


def test_a_network_the_platform_joins_lets_it_reach_the_gateway() -> None:
    shared = network_config(INSTANCE, OWNER, "0.1.0", "10.213.0.16/28", shared_with_platform=True)
    assert shared["Options"] == {"com.docker.network.bridge.enable_icc": "true"}


def test_list_filters_select_clawfleets_objects() -> None:
    assert label_filter() == {"label": ["clawfleet.managed=true"]}
    assert label_filter(instance="x") == {"label": ["clawfleet.managed=true", "clawfleet.instance=x"]}


@pytest.mark.parametrize(("taken", "expected"), [
    ([], "10.213.0.0/28"),
    (["10.213.0.0/28"], "10.213.0.16/28"),
    (["10.213.0.0/28", "10.213.0.32/28"], "10.213.0.16/28"),
    (["10.213.0.0/27"], "10.213.0.32/28"),  # a bigger network someone else made overlaps two
    (["172.17.0.0/16"], "10.213.0.0/28"),  # Docker's own default bridge is not in the pool
])
def test_subnets_come_from_the_pool_without_overlaps(taken: list[str], expected: str) -> None:
    assert next_subnet("10.213.0.0/16", 28, taken) == expected


def test_an_exhausted_pool_says_so() -> None:
    with pytest.raises(PoolExhausted, match="no free /28 left in 10.213.0.0/27"):
        next_subnet("10.213.0.0/27", 28, ["10.213.0.0/28", "10.213.0.16/28"])
    assert len({next_subnet("10.213.0.0/16", 28, [f"10.213.{i // 16}.{i % 16 * 16}/28" for i in range(n)])
                for n in range(40)}) == 40


# -- where the platform's proxy connects from (owner sign-in) ------------------------------------

NETWORK = {
    "IPAM": {"Config": [{"Subnet": "10.213.0.16/28"}]},
    "Containers": {"4f1c2a9be0d7" + "0" * 52: {"Name": "clawfleet", "IPv4Address": "10.213.0.19/28"},
                   "77aa" + "0" * 60: {"Name": "clawfleet-1a2b3c4d5e-gateway", "IPv4Address": "10.213.0.18/28"}},
}


def test_published_ports_connect_from_the_bridges_first_address() -> None:
    assert proxy_address(NETWORK, None) == "10.213.0.17"
    given = {"IPAM": {"Config": [{"Subnet": "10.213.0.16/28", "Gateway": "10.213.0.30"}]}}
    assert proxy_address(given, None) == "10.213.0.30"  # an engine that names it is believed


@pytest.mark.parametrize("join", ["4f1c2a9be0d7", "clawfleet"])  # the container's hostname (short id), or name
def test_the_platform_container_connects_from_its_own_address_on_the_network(join) -> None:
    assert proxy_address(NETWORK, join) == "10.213.0.19"


@pytest.mark.parametrize(("network", "join"), [
    ({}, None), ({"IPAM": {"Config": None}}, None), (NETWORK, "someone-else"),
    ({"Containers": {"4f1c2a9be0d7": {"Name": "x", "IPv4Address": ""}}}, "4f1c2a9be0d7"),
])
def test_without_a_known_address_the_gateway_keeps_token_auth(network, join) -> None:
    assert proxy_address(network, join) is None
    assert placement(1024, proxy_address(network, join)).proxy_address is None


def test_the_placement_carries_the_proxys_address() -> None:
    assert placement(1024, "10.213.0.17").proxy_address == "10.213.0.17"
