"""The docker runtime against a stand-in engine: which container it asks for."""

from __future__ import annotations

import uuid
from typing import Any

import aiodocker
import pytest

from provisioner.runtimes.base import GatewayState, Observed
from provisioner.runtimes.docker import DockerConfig, DockerRuntime
from provisioner.runtimes.docker_spec import container_name

INSTANCE = uuid.UUID("5b0d6f2e-8a51-4a07-9a52-2f3c1c7e9d10")


class Container:
    def __init__(self, shown: dict[str, Any]) -> None:
        self.shown = shown

    async def show(self) -> dict[str, Any]:
        return self.shown


class Engine:
    """Knows the containers it is given by name or id; remembers every lookup."""

    def __init__(self, *shown: dict[str, Any]) -> None:
        self.containers = self
        self.asked: list[str] = []
        self.known = {key: Container(one) for one in shown for key in (one["Id"], one["Name"].lstrip("/"))}

    async def get(self, reference: str) -> Container:
        self.asked.append(reference)
        if reference not in self.known:
            raise aiodocker.DockerError(404, f"No such container: {reference}")
        return self.known[reference]


def _runtime(engine: Engine) -> DockerRuntime:
    return DockerRuntime(engine, DockerConfig(image="clawfleet/openclaw:2026.9.6", version="0.1.0"))  # type: ignore


def _shown(name: str, container_id: str, running: bool = True) -> dict[str, Any]:
    return {"Id": container_id, "Name": f"/{name}",
            "State": {"Running": running, "Status": "running" if running else "exited", "ExitCode": 0}}


@pytest.mark.parametrize(("state", "asked"), [
    ({"version": 1, "container": "clawfleet-named-before", "id": "c0ffee", "port": 20007}, "clawfleet-named-before"),
    ({"version": 1, "id": "c0ffee"}, "c0ffee"),  # a state with an id only
    ({}, container_name(INSTANCE)),  # nothing recorded: the deterministic name
])
async def test_the_container_the_state_records_is_the_one_asked_for(state: dict, asked: str) -> None:
    engine = Engine()
    runtime = _runtime(engine)
    assert await runtime.status(INSTANCE, state) == Observed(GatewayState.GONE)
    await runtime.stop(INSTANCE, state, timeout=1)
    assert [line async for line in runtime.logs(INSTANCE, state, 10, False)] == []
    assert engine.asked == [asked] * 3


async def test_a_recorded_container_is_found_under_its_own_name() -> None:
    engine = Engine(_shown("clawfleet-named-before", "c0ffee"), _shown(container_name(INSTANCE), "beef"))
    state = {"version": 1, "container": "clawfleet-named-before", "id": "c0ffee", "port": 20007}
    observed = await _runtime(engine).status(INSTANCE, state)
    assert observed == Observed(GatewayState.UP, "container clawfleet-named-before")


async def test_another_container_under_the_recorded_name_is_not_taken_for_it() -> None:
    engine = Engine(_shown(container_name(INSTANCE), "beef"))
    state = {"version": 1, "container": container_name(INSTANCE), "id": "c0ffee", "port": 20007}
    assert (await _runtime(engine).status(INSTANCE, state)).state is GatewayState.DOWN
