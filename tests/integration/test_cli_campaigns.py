"""``pitstop campaign`` against a real ``pitstop serve``: plan, create, start, pause, then the
server is killed and started again, and the campaign resumes where it was and finishes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from cli_server import ServerProcess, child_env, new_token, sqlite_url
from typer.testing import CliRunner

from pitstop.cli.main import app

LAB = """
fabrics:
  - name: roll
    groups:
      - {name: pair-a, max_unavailable: 1}
      - {name: pair-b, max_unavailable: 1}
      - {name: pair-c, max_unavailable: 1}
    devices:
      - {name: leaf1, role: leaf, groups: [pair-a], labels: {sim.convergence_s: "0"}}
      - {name: leaf2, role: leaf, groups: [pair-a], labels: {sim.convergence_s: "0"}}
      - {name: leaf3, role: leaf, groups: [pair-b], labels: {sim.convergence_s: "0"}}
      - {name: leaf4, role: leaf, groups: [pair-b], labels: {sim.convergence_s: "0"}}
      - {name: leaf5, role: leaf, groups: [pair-c], labels: {sim.convergence_s: "0"}}
      - {name: leaf6, role: leaf, groups: [pair-c], labels: {sim.convergence_s: "0"}}
"""
DEFINITION = {
    "name": "leaves",
    "fabric": "roll",
    "selector": {"roles": ["leaf"]},
    "concurrency": 2,
    "soak_s": 1,
    "advanced_parameters": {
        "sample_interval_s": 0,
        "drain": {"poll_interval_s": 0.1},
        "undrain": {"poll_interval_s": 0.1},
    },
}


def _cli(url: str, token: str, tmp: Path, *args: str) -> Any:
    env = {
        "PITSTOP_URL": url,
        "PITSTOP_TOKEN": token,
        "PITSTOP_CONFIG": str(tmp / "login.json"),
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_a_paused_campaign_survives_a_server_restart_and_resumes(tmp_path: Path) -> None:
    token = new_token()
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=sqlite_url(tmp_path / "campaign.db"),
        PITSTOP_BOOTSTRAP_TOKEN=token,
        PITSTOP_SIM_STATE_DIR=str(tmp_path / "sim"),
        PITSTOP_LEASE_TTL_S="2",
        PITSTOP_CAMPAIGN_POLL_INTERVAL_S="0.1",
    )
    definition = tmp_path / "leaves.yaml"
    definition.write_text(yaml.safe_dump(DEFINITION))
    headers = {"Authorization": f"Bearer {token}"}

    first = ServerProcess("serve", env=env, log=tmp_path / "first.log")
    with first, httpx.Client(base_url=first.url, headers=headers, timeout=10) as http:
        r = http.post("/api/v1/inventory/import", content=LAB, params={"format": "yaml"})
        assert r.status_code == 200, r.text
        cli = lambda *a: _cli(first.url, token, tmp_path, *a)  # noqa: E731

        planned = cli("campaign", "plan", str(definition), "-o", "json")
        assert planned.exit_code == 0, planned.output
        plan = json.loads(planned.output)
        assert plan["wave_count"] == plan["lower_bound"]["value"] == 3
        assert all({"leaf1", "leaf2"} - set(w) for w in plan["waves"])  # a pair never together

        cyclic = tmp_path / "cyclic.yaml"
        cyclic.write_text(
            yaml.safe_dump(
                {**DEFINITION, "dependencies": ["leaf1 before leaf3", "leaf3 before leaf1"]}
            )
        )
        refused = cli("campaign", "create", str(cyclic))
        assert refused.exit_code == 1
        assert "CAMPAIGN_INVALID" in refused.output and "dependency cycle: " in refused.output

        assert cli("campaign", "create", str(definition)).exit_code == 0
        started = cli("campaign", "start", "leaves")
        assert started.exit_code == 0, started.output

        def one_done() -> bool:
            devices = http.get("/api/v1/campaigns/leaves").json()["devices"]
            return any(d["state"] == "done" for d in devices)

        _wait(one_done, 60, "a first device to finish")
        paused = cli("campaign", "pause", "leaves")
        assert paused.exit_code == 0, paused.output
        assert "paused" in paused.output
        first.proc.send_signal(signal.SIGKILL)  # no clean shutdown: a crash
        first.proc.wait(10)

    second = ServerProcess("serve", env=env, log=tmp_path / "second.log")
    with second, httpx.Client(base_url=second.url, headers=headers, timeout=10) as http:
        cli = lambda *a: _cli(second.url, token, tmp_path, *a)  # noqa: E731
        shown = json.loads(cli("campaign", "show", "leaves", "-o", "json").output)
        assert shown["state"] == "paused"
        before = {d["device"]: d["state"] for d in shown["devices"]}
        assert "pending" in before.values()

        resumed = cli("campaign", "resume", "leaves")
        assert resumed.exit_code == 0, resumed.output
        watched = cli("campaign", "show", "leaves", "--watch", "-o", "json")
        final = json.loads(watched.output)
        assert final["state"] == "succeeded", (final, second.output())
        assert {d["state"] for d in final["devices"]} == {"done"}
        assert final["progress"]["percent"] == 100
        for name in ("leaf1", "leaf2", "leaf3", "leaf4", "leaf5", "leaf6"):
            assert http.get(f"/api/v1/devices/{name}").json()["status"] == "activated"

        table = cli("campaign", "show", "leaves")
        assert table.exit_code == 0
        assert "succeeded" in table.output and "leaf6" in table.output
        log = cli("campaign", "log", "leaves")
        assert "pause requested" in log.stdout and "resume requested" in log.stdout
