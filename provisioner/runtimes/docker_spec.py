"""What the docker runtime asks the engine for, as pure functions (KubeSpawner's make_pod):
names, labels, and the JSON bodies of Docker Engine API calls, tested by dict equality.

Hardening, at least as strong as upstream's `openclaw fleet`: uid 1000, every capability
dropped, no-new-privileges, a PID limit, memory and CPU limits (Node's heap capped below the
memory limit), a read-only root filesystem with size-limited tmpfs for /tmp and the cache, a
bridge network of its own per instance, the gateway published on 127.0.0.1 only, state and
auth-profile keys in two volumes of their own, log rotation, no restart policy (the reconciler
restarts, with backoff), and never the Docker socket.

No secret in what `docker inspect` shows (Env, Cmd, Labels, Mounts): the gateway token and the
bot token are files (0600, uid 1000) in a third volume, mounted read-only at /run/secrets. The
runtime fills it before each start through a seed container: created, never started, mounting
that volume writable, given the files by the engine's archive upload (tar headers carry owner
and mode), then deleted. The engine refuses an upload into a read-only mount, so the gateway's
own container cannot be the one. The provider API key is still in Env until the platform's
model gateway holds it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.openclaw.gateway import Placement

LABEL = "clawfleet"  # every object carries clawfleet.managed=true and these clawfleet.* labels
GATEWAY_PORT = 18789  # inside the container
HOME = "/home/node"
STATE_DIR = f"{HOME}/.openclaw"
SECRETS_DIR = f"{HOME}/.config/openclaw"  # auth-profile keys, a volume apart from the state
CACHE_DIR = f"{HOME}/.cache"
CREDENTIALS_DIR = "/run/secrets"  # the gateway's secret files (Gateway.secret_files), read-only
# Instance backups on their way in or out (provisioner/runtimes/state_archives.py): a volume of its
# own, outside the state dir; the node user writes in its `work` directory (the volume's root is root's).
BACKUPS_DIR = f"{HOME}/backups"
BACKUPS_WORK = f"{BACKUPS_DIR}/work"
USER = "1000:1000"
PIDS_LIMIT = 512
LOG_MAX_SIZE, LOG_MAX_FILES = "10m", "3"
TMPFS = {
    "/tmp": "rw,nosuid,nodev,size=256m",
    CACHE_DIR: "rw,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0700",
}
HEAP_SHARE = 0.75  # Node's old space gets this share of the memory limit, the rest is native memory
MIB = 1024 * 1024


def _short_hash(instance_id: uuid.UUID) -> str:
    return hashlib.sha256(str(instance_id).encode()).hexdigest()[:16]


def container_name(instance_id: uuid.UUID) -> str:
    """Deterministic and DNS-safe: the same instance always finds its own container."""
    return f"clawfleet-{_short_hash(instance_id)}"


def network_name(instance_id: uuid.UUID) -> str:
    return f"clawfleet-net-{_short_hash(instance_id)}"


def volume_name(instance_id: uuid.UUID, purpose: str) -> str:
    return f"clawfleet-{_short_hash(instance_id)}-{purpose}"


def seed_name(instance_id: uuid.UUID) -> str:
    """The short-lived container that writes the instance's secret files into their volume."""
    return f"clawfleet-{_short_hash(instance_id)}-seed"


def labels(instance_id: uuid.UUID, owner_id: uuid.UUID | None, version: str) -> dict[str, str]:
    found = {f"{LABEL}.managed": "true", f"{LABEL}.instance": str(instance_id), f"{LABEL}.version": version}
    if owner_id is not None:
        found[f"{LABEL}.owner"] = str(owner_id)
    return found


def heap_mb(memory_mb: int) -> int:
    return max(128, int(memory_mb * HEAP_SHARE))


def placement(memory_mb: int, proxy_address: str | None = None) -> Placement:
    """Where a gateway of this runtime lives: inside the container, listening on its own network
    namespace (published on the host's loopback only), its state and logs in the state volume.
    `proxy_address`: where the platform's proxy connects from (`proxy_address()`), for owner sign-in."""
    return Placement(bind="lan", port=GATEWAY_PORT, state_dir=Path(STATE_DIR),
                     config_path=Path(STATE_DIR) / "openclaw.json", log_file=Path(STATE_DIR) / "logs" / "openclaw.log",
                     secrets_dir=Path(CREDENTIALS_DIR), heap_mb=heap_mb(memory_mb), proxy_address=proxy_address)


def proxy_address(network: dict, join_container: str | None) -> str | None:
    """The address the gateway sees the platform's connections come from, read off its network's
    inspect: the platform's own container's address there when it joins the network ("network"
    endpoint mode), else the bridge's gateway address, which the engine's port publishing on the
    host's loopback connects from (measured: docker-proxy, and NAT's masquerade alike). None when
    the network does not say, and the gateway keeps token auth."""
    if join_container:
        for container_id, joined in (network.get("Containers") or {}).items():
            if container_id.startswith(join_container) or joined.get("Name") == join_container:
                return _host_part(joined.get("IPv4Address"))
        return None
    for config in (network.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return _host_part(config["Gateway"])
        if config.get("Subnet"):  # the engine's default gateway: the subnet's first address
            subnet = ipaddress.ip_network(config["Subnet"], strict=False)
            if subnet.version == 4:
                return str(next(subnet.hosts()))
    return None


def _host_part(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_interface(address).ip)
    except ValueError:
        return None


@dataclass(frozen=True)
class ContainerSpec:
    instance_id: uuid.UUID
    owner_id: uuid.UUID | None
    image: str
    version: str  # ClawFleet's version, for the labels
    host_port: int  # published on 127.0.0.1
    memory_mb: int
    cpus: float
    env: dict[str, str] = field(default_factory=dict)  # the gateway's own variables (Gateway.env)
    compile_cache: str | None = None  # the image's filled Node compile cache (its clawfleet.compile-cache label)

    @property
    def network(self) -> str:
        return network_name(self.instance_id)


def container_config(spec: ContainerSpec) -> dict:
    """The body of POST /containers/create."""
    env = {
        "HOME": HOME,
        "XDG_CACHE_HOME": CACHE_DIR,
        "TMPDIR": "/tmp",
        **spec.env,
    }
    if spec.compile_cache:  # filled when the image was built: most start-up compilation is skipped
        env["NODE_COMPILE_CACHE"] = spec.compile_cache
    return {
        "Image": spec.image,
        # Stable across the instance's containers: OpenClaw trusts its own lock in the state volume
        # only on the same host name, and would wait out a killed gateway's lock (5 min) otherwise.
        "Hostname": container_name(spec.instance_id),
        "User": USER,
        "Env": [f"{name}={value}" for name, value in sorted(env.items())],
        "Cmd": ["node", "openclaw.mjs", "gateway", "run"],
        "ExposedPorts": {f"{GATEWAY_PORT}/tcp": {}},
        "Labels": labels(spec.instance_id, spec.owner_id, spec.version),
        "StopSignal": "SIGTERM",
        "HostConfig": host_config(spec),
        "NetworkingConfig": {"EndpointsConfig": {spec.network: {}}},
    }


def host_config(spec: ContainerSpec) -> dict:
    return {
        "NetworkMode": spec.network,
        "PortBindings": {f"{GATEWAY_PORT}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(spec.host_port)}]},
        "Mounts": [
            {"Type": "volume", "Source": volume_name(spec.instance_id, "state"), "Target": STATE_DIR},
            {"Type": "volume", "Source": volume_name(spec.instance_id, "secrets"), "Target": SECRETS_DIR},
            {"Type": "volume", "Source": volume_name(spec.instance_id, "credentials"), "Target": CREDENTIALS_DIR,
             "ReadOnly": True},
            {"Type": "volume", "Source": volume_name(spec.instance_id, "backups"), "Target": BACKUPS_DIR},
        ],
        "Tmpfs": dict(TMPFS),
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
        "PidsLimit": PIDS_LIMIT,
        "Memory": spec.memory_mb * MIB,
        "MemorySwap": spec.memory_mb * MIB,  # equal to Memory: no swap beyond the limit
        "NanoCpus": int(spec.cpus * 1e9),
        "LogConfig": {"Type": "json-file", "Config": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILES}},
        "RestartPolicy": {"Name": "no"},
        "Init": False,  # the image's entrypoint is tini
    }


def seed_config(instance_id: uuid.UUID, owner_id: uuid.UUID | None, image: str, version: str) -> dict:
    """The body of POST /containers/create for the seed container: never started, so it runs
    nothing and needs no network; it only holds the credentials volume writable for the upload."""
    return {
        "Image": image,
        "User": USER,
        "Cmd": ["true"],
        "Labels": labels(instance_id, owner_id, version),
        "HostConfig": {
            "NetworkMode": "none",
            "Mounts": [{"Type": "volume", "Source": volume_name(instance_id, "credentials"),
                        "Target": CREDENTIALS_DIR}],
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
        },
    }


def maintenance_config(instance_id: uuid.UUID, image: str, version: str) -> dict:
    """The body of POST /containers/create for a maintenance container: the instance's state,
    auth-profile and backups volumes with the gateway's hardening and no network, idle, for
    `openclaw` commands (backup, restore, doctor) while its gateway is stopped."""
    return {
        "Image": image,
        "User": USER,
        "Env": [f"HOME={HOME}", f"XDG_CACHE_HOME={CACHE_DIR}", "TMPDIR=/tmp"],
        "Cmd": ["node", "-e", "setInterval(() => {}, 1 << 30)"],
        "Labels": labels(instance_id, None, version) | {f"{LABEL}.role": "maintenance"},
        "HostConfig": {
            "NetworkMode": "none",
            "Mounts": [
                {"Type": "volume", "Source": volume_name(instance_id, "state"), "Target": STATE_DIR},
                {"Type": "volume", "Source": volume_name(instance_id, "secrets"), "Target": SECRETS_DIR},
                {"Type": "volume", "Source": volume_name(instance_id, "backups"), "Target": BACKUPS_DIR},
            ],
            "Tmpfs": dict(TMPFS),
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "PidsLimit": PIDS_LIMIT,
            "Memory": 1024 * MIB,
            "MemorySwap": 1024 * MIB,
        },
    }


def maintenance_name(instance_id: uuid.UUID) -> str:
    return f"{container_name(instance_id)}-maintenance"


def network_config(instance_id: uuid.UUID, owner_id: uuid.UUID | None, version: str,
                   subnet: str | None = None, *, shared_with_platform: bool = False) -> dict:
    """The body of POST /networks/create: a bridge of the instance's own. `subnet` comes from
    ClawFleet's pool of small subnets (Docker's default pools run out at about 31 networks).

    Instances never share a bridge, and Docker drops traffic between bridges. Inside one bridge,
    container-to-container traffic is refused (ICC off) unless the platform, running in a container
    of its own, joins the network to reach the gateway: ICC off would drop that too."""
    config: dict = {
        "Name": network_name(instance_id),
        "Driver": "bridge",
        "CheckDuplicate": True,
        "Internal": False,  # the gateway must reach its model provider and Telegram
        "Labels": labels(instance_id, owner_id, version),
        "Options": {"com.docker.network.bridge.enable_icc": "true" if shared_with_platform else "false"},
    }
    if subnet is not None:
        config["IPAM"] = {"Driver": "default", "Config": [{"Subnet": subnet}]}
    return config


def volume_config(instance_id: uuid.UUID, owner_id: uuid.UUID | None, version: str, purpose: str) -> dict:
    return {"Name": volume_name(instance_id, purpose), "Labels": labels(instance_id, owner_id, version)}


def label_filter(**extra: str) -> dict[str, list[str]]:
    """The `filters` of a list call that finds ClawFleet's objects (and only those)."""
    return {"label": [f"{LABEL}.managed=true", *(f"{LABEL}.{k}={v}" for k, v in extra.items())]}
