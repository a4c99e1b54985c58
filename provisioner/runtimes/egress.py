"""The egress guard: host firewall rules that keep instance containers away from the cloud's
metadata service (169.254.169.254) and from the host's own addresses.

Docker has no per-network egress filter, so the guard lives in the host's iptables (filter
table), in the two places Docker leaves to us, and matches the instance subnet pool only:

    DOCKER-USER -s POOL -j CLAWFLEET-EGRESS   forwarded traffic: the denied ranges are refused
    INPUT       -s POOL -j CLAWFLEET-HOST     to the host itself (every bridge gateway included):
                                              replies, DNS and the model gateway's port only

Replies to connections the host opened (the platform's health checks, the published port) pass:
both chains return on ESTABLISHED first. The chains' contents are replaced atomically with
iptables-restore; the jumps are added once. Docker keeps DOCKER-USER across its restarts, and the
platform installs the rules again at every start (after a reboot, say).

Not enforced: IPv6 (instance networks have none), a remote engine (the rules belong on its host),
and a platform that is not root on the engine's host, such as the compose deployment:
`clawfleet egress-guard --print` gives the operator the same rules as a shell script.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
from dataclasses import dataclass

DEFAULT_DENIED = ("169.254.0.0/16",)  # link-local: cloud metadata services, among them AWS/GCP/Azure's
REFUSE = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]  # fails at once, unlike a DROP's timeout
REPLIES = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"]


class EgressGuardError(Exception):
    """The rules cannot be installed here; the message says why."""


@dataclass(frozen=True)
class EgressRules:
    pool: str  # the instance networks' address pool
    denied: tuple[str, ...] = DEFAULT_DENIED
    # TCP ports of the host's that instances may connect to: the platform's model gateway
    open_ports: tuple[int, ...] = ()
    prefix: str = "CLAWFLEET"  # chain names: tests use their own, to stay apart from a running platform

    @property
    def egress_chain(self) -> str:
        return f"{self.prefix}-EGRESS"

    @property
    def host_chain(self) -> str:
        return f"{self.prefix}-HOST"

    def chains(self) -> dict[str, list[list[str]]]:
        """Each chain of ours and its rules, in order."""
        return {
            self.egress_chain: [REPLIES, *(["-d", network, *REFUSE] for network in self.denied)],
            self.host_chain: [REPLIES, ["-p", "udp", "--dport", "53", "-j", "RETURN"],
                              ["-p", "tcp", "--dport", "53", "-j", "RETURN"],
                              *(["-p", "tcp", "--dport", str(port), "-j", "RETURN"] for port in self.open_ports),
                              REFUSE],
        }

    def jumps(self) -> list[tuple[str, list[str]]]:
        """(built-in or Docker chain, rule) pairs that send the pool's traffic into ours."""
        return [("DOCKER-USER", ["-s", self.pool, "-j", self.egress_chain]),
                ("INPUT", ["-s", self.pool, "-j", self.host_chain])]

    def restore_input(self) -> str:
        """For `iptables-restore --noflush`: declaring a chain empties it, so the swap is atomic."""
        lines = ["*filter", *(f":{chain} - [0:0]" for chain in self.chains())]
        for chain, rules in self.chains().items():
            lines += [shlex.join(["-A", chain, *rule]) for rule in rules]
        return "\n".join([*lines, "COMMIT", ""])

    def script(self) -> str:
        """The same rules as a shell script, for a host where the platform cannot install them."""
        lines = ["#!/bin/sh", "# ClawFleet egress guard: run as root on the Docker engine's host, after dockerd starts",
                 "set -e"]
        for chain, rules in self.chains().items():
            lines += [f"iptables -w -N {chain} 2>/dev/null || true", f"iptables -w -F {chain}"]
            lines += [shlex.join(["iptables", "-w", "-A", chain, *rule]) for rule in rules]
        for parent, rule in self.jumps():
            lines.append(f"{shlex.join(['iptables', '-w', '-C', parent, *rule])} 2>/dev/null || "
                         f"{shlex.join(['iptables', '-w', '-I', parent, '1', *rule])}")
        return "\n".join(lines) + "\n"


def unsupported_reason(docker_url: str | None) -> str | None:
    """Why the platform cannot install the rules itself here, or None when it can."""
    if docker_url and not docker_url.startswith("unix://"):
        return f"the Docker engine at {docker_url} is on another host: its rules belong there"
    if os.geteuid() != 0:
        return "the platform is not root, so it cannot change the host's firewall"
    if shutil.which("iptables") is None or shutil.which("iptables-restore") is None:
        return "iptables is not installed"
    return None


async def install(rules: EgressRules) -> None:
    """Install or refresh the rules; idempotent."""
    if (await _iptables("-S", "DOCKER-USER", check=False))[0] != 0:
        raise EgressGuardError("the host's firewall has no DOCKER-USER chain: the engine runs without iptables "
                               "(or on another host)")
    await _run(["iptables-restore", "-w", "--noflush"], stdin=rules.restore_input())
    for parent, rule in rules.jumps():
        if (await _iptables("-C", parent, *rule, check=False))[0] != 0:
            await _iptables("-I", parent, "1", *rule)


async def installed(rules: EgressRules) -> bool:
    """Whether the jumps and our chains, as the rules say, are in place."""
    for parent, rule in rules.jumps():
        if (await _iptables("-C", parent, *rule, check=False))[0] != 0:
            return False
    for chain, chain_rules in rules.chains().items():
        for rule in chain_rules:
            if (await _iptables("-C", chain, *rule, check=False))[0] != 0:
                return False
    return True


async def remove(rules: EgressRules) -> None:
    """Take the rules out again (the jumps first, then our chains); what is missing is skipped."""
    for parent, rule in rules.jumps():
        while (await _iptables("-D", parent, *rule, check=False))[0] == 0:
            pass  # a jump added twice by hand goes too
    for chain in rules.chains():
        await _iptables("-F", chain, check=False)
        await _iptables("-X", chain, check=False)


async def _iptables(*args: str, check: bool = True) -> tuple[int, str]:
    return await _run(["iptables", "-w", *args], check=check)


async def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> tuple[int, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    except FileNotFoundError:
        raise EgressGuardError(f"`{argv[0]}` is not installed") from None
    output, _ = await process.communicate(stdin.encode() if stdin is not None else None)
    text = output.decode(errors="replace").strip()
    if check and process.returncode != 0:
        raise EgressGuardError(f"{shlex.join(argv[:4])} failed (exit {process.returncode}): {text}")
    return process.returncode or 0, text
