"""The budget guarantee under load, on PostgreSQL: several ``pitstop serve`` replicas on one
database, hundreds of concurrent activations through all of them (status changes by hand and
maintenance jobs run by the replicas' workers), then a replay of the audit log, row by row in
commit order, proving that no group and no capped role ever had more than ``max_unavailable``
members out of service at any moment.

The audit log is a faithful history here because every status change appends its row in the
same transaction, and appends are serialised on the chain's head: ``seq`` is commit order.
Bounded in size (a fixed request count) and in time (every wait has a limit); loopback only.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_server import ServerProcess, child_env, new_token

from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus

pytestmark = pytest.mark.postgres

REPLICAS = 3
BURST_PER_DEVICE = 10  # concurrent activation requests per hand-managed device, all at once
CYCLES_PER_DEVICE = 8  # then each device tries this many activate -> release cycles
JOB_SUCCESSES = 1  # maintenance round trips by job per job-managed device...
JOB_ATTEMPTS = 4  # ...in at most this many activation jobs
# A guard against a hang, not a timing assertion: about 35 s on an idle 2-core machine.
RUN_LIMIT_S = 120.0
FAST = {"sample_interval_s": 0.2, "drain": {"poll_interval_s": 0.2}}

# 4 racks of 6 (2 out at most), 12 pairs (1 out at most), a 25% fleet-wide group, 4 spines
# (the role default: half). Devices j1..j4 are run by jobs, the others by hand.
RACKS = {f"rack-{r}": [f"{r}{i}" for i in range(1, 7)] for r in "abcd"}
MANUAL = [d for members in RACKS.values() for d in members]
JOBS = ["j1", "j2", "j3", "j4"]
PAIRS = {f"pair-{i // 2 + 1}": MANUAL[i : i + 2] for i in range(0, len(MANUAL), 2)}
PAIRS["pair-j1"], PAIRS["pair-j2"] = ["j1", "j2"], ["j3", "j4"]
for n, j in enumerate(JOBS):
    RACKS[f"rack-{'abcd'[n]}"].append(j)
SPINES = ["a1", "b1", "c1", "d1"]
GROUPS: dict[str, tuple[str, list[str]]] = {
    **{g: ("2", m) for g, m in RACKS.items()},
    **{g: ("1", m) for g, m in PAIRS.items()},
    "fleet": ("25%", MANUAL + JOBS),
}


def _inventory() -> str:
    lines = ["fabrics:", "  - name: stress", "    groups:"]
    lines += [f"      - {{name: {g}, max_unavailable: '{b}'}}" for g, (b, _) in GROUPS.items()]
    lines.append("    devices:")
    for dev in MANUAL + JOBS:
        groups = sorted(g for g, (_, m) in GROUPS.items() if dev in m)
        role = "spine" if dev in SPINES else "leaf"
        lines.append(
            f"      - {{name: {dev}, role: {role}, groups: [{', '.join(groups)}], "
            "labels: {sim.convergence_s: '0.3'}}"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Tally:
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    activations: int = 0


@pytest.fixture
def replicas(pg_database: str, tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    token = new_token()
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=pg_database,
        PITSTOP_BOOTSTRAP_TOKEN=token,
        PITSTOP_SIM_STATE_DIR=str(tmp_path / "sim"),  # one simulated fleet for all replicas
        PITSTOP_EPOCH_INTERVAL_S="1",
        PITSTOP_LEASE_TTL_S="10",
    )
    servers: list[ServerProcess] = []
    try:
        for i in range(REPLICAS):
            # One at a time: the first creates the bootstrap token, the others find it.
            server = ServerProcess("serve", env=env, log=tmp_path / f"replica{i}.log")
            servers.append(server)
            server.wait_ready()
        yield [s.url for s in servers], token
    finally:
        for s in servers:
            s.stop()


async def _set(c: httpx.AsyncClient, dev: str, status: str, tally: Tally) -> bool:
    r = await c.post(f"/api/v1/devices/{dev}/status", json={"status": status})
    if status == "draining":
        tally.activations += 1
    if r.status_code == 200:
        tally.outcomes[f"{status}:ok"] += 1
        return True
    body = r.json()
    tally.outcomes[f"{status}:{body.get('code')}"] += 1
    if body.get("code") == "BUDGET_EXCEEDED":
        tally.refusals.append(body)
    return False


async def _release(c: httpx.AsyncClient, dev: str, tally: Tally) -> None:
    for status in ("maintenance", "undraining", "activated"):
        assert await _set(c, dev, status, tally), f"{dev} could not go {status}"


async def _cycle(
    clients: list[httpx.AsyncClient], dev: str, tally: Tally, rng: random.Random
) -> None:
    for _ in range(CYCLES_PER_DEVICE):
        c = rng.choice(clients)
        if await _set(c, dev, "draining", tally):
            await asyncio.sleep(rng.uniform(0.005, 0.05))
            await _release(rng.choice(clients), dev, tally)
        else:
            await asyncio.sleep(rng.uniform(0.001, 0.02))


async def _job(c: httpx.AsyncClient, body: dict[str, Any], tally: Tally) -> str:
    r = await c.post("/api/v1/jobs", json=body)
    if r.status_code != 201:
        tally.outcomes[f"job:{r.json().get('code')}"] += 1
        return "refused"
    job_id = r.json()["id"]
    for _ in range(300):
        await asyncio.sleep(0.2)
        got = (await c.get(f"/api/v1/jobs/{job_id}")).json()
        if got["status"] in ("succeeded", "failed", "cancelled"):
            key = got["status"]
            if key == "failed":
                key += ":" + (got.get("error") or "").split(":")[0]
            tally.outcomes[f"job {body['type']}:{key}"] += 1
            return str(got["status"])
    raise AssertionError(f"job {job_id} did not finish")


async def _jobs(
    clients: list[httpx.AsyncClient], dev: str, tally: Tally, rng: random.Random
) -> int:
    done = 0
    for _ in range(JOB_ATTEMPTS):
        if done == JOB_SUCCESSES:
            break
        activate = {
            "type": "maintenance.activate",
            "device": dev,
            "reason": "stress",
            "advanced_parameters": FAST,
        }
        tally.activations += 1
        if await _job(rng.choice(clients), activate, tally) == "succeeded":
            exit_ = {"type": "maintenance.deactivate", "device": dev, "advanced_parameters": FAST}
            assert await _job(rng.choice(clients), exit_, tally) == "succeeded"
            done += 1
        else:
            await asyncio.sleep(rng.uniform(0.05, 0.3))
    return done


async def _audit(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"fabric": "stress", "action": "device.status", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await c.get("/api/v1/audit", params=params)).json()
        rows += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return sorted(rows, key=lambda r: r["seq"])


def _pools() -> dict[str, tuple[int, list[str]]]:
    pools = {g: (Budget.parse(b).slots(len(m)), m) for g, (b, m) in GROUPS.items()}
    pools["role:spine"] = (Budget(50, percent=True).slots(len(SPINES)), SPINES)
    return pools


def _replay(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The most members of each pool out of service at once, after every committed change."""
    status = dict.fromkeys(MANUAL + JOBS, DeviceStatus.ACTIVATED)
    pools = _pools()
    peak = dict.fromkeys(pools, 0)
    for row in rows:
        dev = row["device"]
        # Each device's rows chain: what a change started from is what the last one left.
        assert row["from_status"] == status[dev].value, row
        status[dev] = DeviceStatus(row["to_status"])
        for name, (allowed, members) in pools.items():
            out = sum(1 for m in members if status[m] in UNAVAILABLE)
            assert out <= allowed, f"seq {row['seq']}: {name} has {out} out, budget {allowed}"
            peak[name] = max(peak[name], out)
    return peak


async def _run(urls: list[str], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    # Connections idle for less than uvicorn's keep-alive (5 s): a request never races the
    # server closing the connection it was sent on.
    limits = httpx.Limits(max_connections=100, keepalive_expiry=1.0)
    clients = [
        httpx.AsyncClient(base_url=u, headers=headers, timeout=30.0, limits=limits) for u in urls
    ]
    rng = random.Random(6)
    tally = Tally()
    try:
        r = await clients[0].post(
            "/api/v1/inventory/import", content=_inventory(), params={"format": "yaml"}
        )
        assert r.status_code == 200, r.text

        started = time.monotonic()
        # 1. A burst: every request in flight at once, spread over the replicas.
        burst = [d for d in MANUAL for _ in range(BURST_PER_DEVICE)]
        rng.shuffle(burst)
        await asyncio.gather(
            *(_set(clients[i % REPLICAS], d, "draining", tally) for i, d in enumerate(burst))
        )
        held = [
            d
            for d in MANUAL
            if (await clients[0].get(f"/api/v1/devices/{d}")).json()["status"] == "draining"
        ]
        await asyncio.gather(*(_release(rng.choice(clients), d, tally) for d in held))
        burst_done = time.monotonic()

        # 2. Churn: every device in and out, while the workers run activation jobs.
        *_, jobs_done = await asyncio.gather(
            *(_cycle(clients, d, tally, random.Random(d)) for d in MANUAL),
            asyncio.gather(*(_jobs(clients, d, tally, random.Random(d)) for d in JOBS)),
        )
        # If the churn kept every job device out each time, one gets a turn alone now, so that
        # the engine's path through the budgets is always exercised.
        if not any(jobs_done):
            await _jobs(clients, JOBS[0], tally, random.Random(0))
        churned = time.monotonic()
        rows = await _audit(clients[0])
        verified = (await clients[0].get("/api/v1/audit/verify")).json()
        assert verified["ok"], verified
        peak = _replay(rows)
    finally:
        for c in clients:
            await c.aclose()

    pools = _pools()
    print(
        f"\nreplicas {REPLICAS}, activation requests {tally.activations}, "
        f"status changes replayed {len(rows)}"
    )
    print("outcomes", dict(sorted(tally.outcomes.items())))
    print(f"burst {burst_done - started:.1f} s, churn {churned - burst_done:.1f} s")
    for name, (allowed, members) in sorted(pools.items()):
        print(f"  {name:12} members {len(members):2} budget {allowed} peak {peak[name]}")

    assert tally.activations >= 350
    assert tally.outcomes["draining:ok"] > 0
    assert len(tally.refusals) > 0
    # The refusals name the pool and who held it, and the holders were really out of service.
    for body in tally.refusals:
        assert body["group"] in pools
        assert 0 < len(body["holders"]) == body["slots"], body
    # The load was real: the tight pools were driven to their budgets, never past them.
    assert all(peak[p] == 1 for p in PAIRS if p.startswith("pair-") and not p.startswith("pair-j"))
    assert peak["role:spine"] == pools["role:spine"][0]
    assert tally.outcomes["job maintenance.activate:succeeded"] > 0


def test_no_group_ever_exceeds_its_budget_across_replicas(
    replicas: tuple[list[str], str],
) -> None:
    urls, token = replicas
    asyncio.run(asyncio.wait_for(_run(urls, token), RUN_LIMIT_S))
