"""The simulated driver's admin API: faults injected through it change what jobs measure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pitstop.api.app import create_app
from pitstop.api.startup import seed_demo
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.settings import Settings
from pitstop.storage.store import Store


@pytest.fixture
async def api(
    store: Store, clock: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Worker, dict[str, str]]]:
    await seed_demo(store)
    tokens = {}
    async with store.unit() as u:
        for role in (Role.ADMIN, Role.VIEWER):
            _, secret = await u.tokens.create(
                name=role.value,
                role=role,
                fabrics=(),
                expires_at=None,
                actor=Actor("test", Role.ADMIN),
                via=Via.API,
            )
            tokens[role.value] = secret
    registry = DriverRegistry()
    registry.register("simulated", SimulatedDriverFactory(clock=clock))

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    worker = Worker(
        store=store, drivers=registry, clock=clock, sleep=fake_sleep, config=EngineConfig()
    )
    app = create_app(Settings(), store=store, drivers=registry)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, worker, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def healthcheck(client: httpx.AsyncClient, worker: Worker, token: str) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/jobs",
        headers=auth(token),
        json={
            "type": "healthcheck",
            "device": "leaf1",
            "advanced_parameters": {"sample_interval_s": 1},
        },
    )
    assert r.status_code == 201, r.text
    while await worker.run_once():
        pass
    job: dict[str, Any] = (
        await client.get(f"/api/v1/jobs/{r.json()['id']}", headers=auth(token))
    ).json()
    return job


async def test_an_injected_fault_fails_the_check_it_targets_until_cleared(api: Any) -> None:
    client, worker, tokens = api
    admin = tokens["admin"]
    assert (await healthcheck(client, worker, admin))["status"] == "succeeded"

    r = await client.post(
        "/api/v1/simulated/devices/leaf1/faults", headers=auth(admin), json={"fault": "high-cpu"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["faults"] == ["high-cpu"]
    job = await healthcheck(client, worker, admin)
    assert job["status"] == "failed"
    failed = [c for c in job["result"]["checks"] if c["status"] == "fail"]
    assert [c["check"] for c in failed] == ["cpu_idle"]

    r = await client.delete("/api/v1/simulated/devices/leaf1/faults", headers=auth(admin))
    assert r.json()["faults"] == []
    assert (await healthcheck(client, worker, admin))["status"] == "succeeded"

    state = (await client.get("/api/v1/simulated/devices/leaf1", headers=auth(admin))).json()
    assert [c["op"] for c in state["state"]["calls"]].count("health") == 6  # 2 samples x 3 jobs
    audit = (
        await client.get("/api/v1/audit", headers=auth(admin), params={"action": "simulated.fault"})
    ).json()
    assert [e["details"] for e in audit["items"]] == [{"clear": "all"}, {"inject": "high-cpu"}]


async def test_only_admins_inject_and_unknown_faults_are_refused(api: Any) -> None:
    client, _, tokens = api
    r = await client.post(
        "/api/v1/simulated/devices/leaf1/faults",
        headers=auth(tokens["viewer"]),
        json={"fault": "high-cpu"},
    )
    assert r.status_code == 403
    r = await client.post(
        "/api/v1/simulated/devices/leaf1/faults",
        headers=auth(tokens["admin"]),
        json={"fault": "gremlins"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "VALIDATION_FAILED"


async def test_fabric_parameter_defaults_apply_to_its_jobs(api: Any) -> None:
    client, worker, tokens = api
    admin = tokens["admin"]
    r = await client.patch(
        "/api/v1/fabrics/dc1",
        headers=auth(admin),
        json={"parameters": {"checks": {"cpu_idle": {"min_pct": 500}}}},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parameters"
    assert "checks.cpu_idle.min_pct" in r.json()["errors"][0]["message"]

    await client.post(
        "/api/v1/simulated/devices/leaf1/faults", headers=auth(admin), json={"fault": "high-cpu"}
    )
    assert (await healthcheck(client, worker, admin))["status"] == "failed"
    r = await client.patch(
        "/api/v1/fabrics/dc1",
        headers=auth(admin),
        json={"parameters": {"checks": {"cpu_idle": {"min_pct": 10}}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["parameters"] == {"checks": {"cpu_idle": {"min_pct": 10}}}
    job = await healthcheck(client, worker, admin)
    assert job["status"] == "succeeded"
    cpu = next(c for c in job["result"]["checks"] if c["check"] == "cpu_idle")
    assert cpu["threshold"] == 10
