"""Per-instance networks on the real engine: 40 at once from ClawFleet's pool of /28s, where
Docker's default address pools run out at about 31 (networks only, no gateways); and what is
made for an instance that has none yet: nothing."""

from __future__ import annotations

import ipaddress
import uuid

import aiodocker
from pydantic import SecretStr

from provisioner.runtimes.base import LaunchRequest
from provisioner.runtimes.docker import DockerConfig, DockerRuntime
from provisioner.runtimes.docker_spec import label_filter, network_name, volume_name
from tests.support.docker_fixtures import OPENCLAW_IMAGE

POOL = "10.214.0.0/22"  # 64 /28s, apart from the default pool so a running platform is not disturbed


async def test_forty_instance_networks_exist_at_once(docker_engine) -> None:
    owner = uuid.uuid4()
    instance_ids = [uuid.uuid4() for _ in range(40)]
    async with aiodocker.Docker(url=docker_engine) as docker:
        runtime = DockerRuntime(docker, DockerConfig(image=OPENCLAW_IMAGE, version="test", subnet_pool=POOL))
        try:
            proxies = {}  # where the platform's proxy reaches each gateway from: its bridge's address
            for instance_id in instance_ids:
                proxies[instance_id] = await runtime._ensure_network(LaunchRequest(
                    instance_id, 0, "openai", "gpt-5.2", SecretStr("k"), SecretStr("t"), owner_id=owner))
            again = await runtime._ensure_network(LaunchRequest(instance_ids[0], 0, "openai", "gpt-5.2", SecretStr("k"),
                                                                SecretStr("t"), owner_id=owner))  # idempotent
            assert again == proxies[instance_ids[0]]
            ours = await docker.networks.list(filters=label_filter(owner=str(owner)))
            for network in ours:
                subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
                instance_id = uuid.UUID(network["Labels"]["clawfleet.instance"])
                assert proxies[instance_id] == str(subnet.network_address + 1)
            assert sorted(n["Name"] for n in ours) == sorted(network_name(i) for i in instance_ids)
            subnets = [ipaddress.ip_network(n["IPAM"]["Config"][0]["Subnet"]) for n in ours]
            assert len(set(subnets)) == 40 and all(s.prefixlen == 28 for s in subnets)
            assert all(s.subnet_of(ipaddress.ip_network(POOL)) for s in subnets)
            assert all(n["Driver"] == "bridge" and n["Labels"]["clawfleet.managed"] == "true" for n in ours)
        finally:
            for instance_id in instance_ids:
                await runtime._delete_network(instance_id)
        assert await docker.networks.list(filters=label_filter(owner=str(owner))) == []


async def test_a_command_for_an_instance_with_no_state_is_refused_and_makes_nothing(docker_engine) -> None:
    instance_id = uuid.uuid4()
    async with aiodocker.Docker(url=docker_engine) as docker:
        runtime = DockerRuntime(docker, DockerConfig(image=OPENCLAW_IMAGE, version="test", subnet_pool=POOL))
        ran = await runtime.exec(instance_id, {}, ["gateway", "status"])
        assert ran.exit_code == 1 and "no state" in ran.output
        names = {volume["Name"] for volume in (await docker.volumes.list())["Volumes"] or []}
        assert not names & {volume_name(instance_id, purpose) for purpose in ("state", "secrets", "backups")}
        assert await docker.containers.list(all=True, filters=label_filter(instance=str(instance_id))) == []
