"""``pitstop fabric policy``, ``fabric budgets``, ``map``, ``epoch tick`` and the watchdog in
``device list``, against a real ``pitstop serve`` (its worker, epoch ticker and watchdog
running)."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_server import ServerProcess, child_env, new_token, sqlite_url
from typer.testing import CliRunner

from pitstop.cli.main import app

FAST = ["--set", "sample_interval_s=0.2", "--set", "drain.poll_interval_s=0.2"]
LAB = """
fabrics:
  - name: fleet
    groups: [{name: pair, max_unavailable: 1}]
    devices:
      - {name: leaf1, role: leaf, groups: [pair], labels: {sim.convergence_s: "0.5"}}
      - {name: leaf2, role: leaf, groups: [pair], labels: {sim.convergence_s: "0.5"}}
      - {name: leaf3, role: leaf, labels: {sim.convergence_s: "0.5"}}
"""


class Server:
    def __init__(self, url: str, token: str, config: Path, env: dict[str, str]) -> None:
        self.url, self.token, self.config, self.env = url, token, config, env

    def cli_env(self) -> dict[str, str]:
        return {
            "PITSTOP_URL": self.url,
            "PITSTOP_TOKEN": self.token,
            "PITSTOP_CONFIG": str(self.config),
            "COLUMNS": "200",
        }

    def __call__(self, *args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=self.cli_env(), catch_exceptions=False)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("cli-fleet")
    token = new_token()
    env = child_env(
        tmp,
        PITSTOP_DATABASE_URL=sqlite_url(tmp / "fleet.db"),
        PITSTOP_BOOTSTRAP_TOKEN=token,
        # Ticks only by hand here, so the test decides when epochs happen.
        PITSTOP_EPOCH_INTERVAL_S="3600",
        PITSTOP_WATCHDOG_INTERVAL_S="0.2",
    )
    with ServerProcess("serve", env=env, log=tmp / "server.log") as server:
        r = httpx.post(
            f"{server.url}/api/v1/inventory/import",
            content=LAB,
            params={"format": "yaml"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        yield Server(server.url, token, tmp / "login.json", env)


def test_policy_show_set_and_a_forced_maintenance(cli: Server) -> None:
    shown = json.loads(cli("fabric", "policy", "show", "fleet", "-o", "json").stdout)
    assert shown["maintenance_allowed"] is True

    nothing = cli("fabric", "policy", "set", "fleet", "--reason", "x")
    assert nothing.exit_code == 2
    frozen = cli(
        "fabric", "policy", "set", "fleet", "--maintenance-disallowed", "--reason", "freeze"
    )
    assert frozen.exit_code == 0, frozen.stderr
    assert "maintenance allowed  no" in frozen.stdout

    refused = cli("maintenance", "enter", "leaf3", "--reason", "optics", *FAST)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("MAINTENANCE_DISALLOWED: fabric fleet")
    no_reason = cli("maintenance", "enter", "leaf3", "--reason", "optics", "--force", *FAST)
    assert no_reason.exit_code == 1
    assert no_reason.stderr.startswith("VALIDATION_FAILED")
    assert "force_reason: required when force is true" in no_reason.stderr

    forced = cli(
        "maintenance",
        "enter",
        "leaf3",
        "--reason",
        "optics",
        "--force",
        "--force-reason",
        "link down now",
        *FAST,
    )
    assert forced.exit_code == 0, forced.stderr
    assert "maintenance.activate on leaf3: succeeded" in forced.stdout
    audit = json.loads(cli("audit", "--device", "leaf3", "-o", "json").stdout)
    draining = [a for a in audit if a["to_status"] == "draining"]
    assert draining[0]["details"]["forced"] == "link down now"

    allowed = cli(
        "fabric",
        "policy",
        "set",
        "fleet",
        "--maintenance-allowed",
        "--role-budget",
        "leaf=2",
        "--reason",
        "freeze over",
        "-o",
        "json",
    )
    assert allowed.exit_code == 0, allowed.stderr
    assert json.loads(allowed.stdout)["role_budgets"] == {"leaf": "2", "spine": "50%"}
    assert cli("maintenance", "exit", "leaf3", *FAST).exit_code == 0


def test_budgets_table_and_a_refusal_naming_the_holder(cli: Server) -> None:
    assert cli("device", "set-status", "leaf1", "--status", "draining").exit_code == 0
    try:
        refused = cli("device", "set-status", "leaf2", "--status", "draining")
        assert refused.exit_code == 1
        assert refused.stderr.startswith(
            "BUDGET_EXCEEDED: group pair (max_unavailable 1) has no room for leaf2"
        )
        assert "leaf1 (draining)" in refused.stderr
        table = cli("fabric", "budgets", "fleet")
        assert table.exit_code == 0, table.stderr
        pair = next(ln for ln in table.stdout.splitlines() if "pair" in ln)
        assert "leaf1 (draining)" in pair
    finally:
        assert cli("device", "set-status", "leaf1", "--status", "activated").exit_code == 0


def test_map_tick_and_watch(cli: Server) -> None:
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pitstop",
            "map",
            "-f",
            "fleet",
            "--watch",
            "--count",
            "2",
            "-o",
            "json",
        ],
        env={**cli.env, **cli.cli_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(cli("epoch", "tick", "-f", "fleet", "-o", "json").stdout)
        assert cli("device", "set-status", "leaf2", "--status", "draining").exit_code == 0
        # The status changed, the map did not.
        still = json.loads(cli("map", "-f", "fleet", "-o", "json").stdout)
        assert (still["epoch"], still["members"]["leaf2"]) == (first["epoch"], "ONLINE")
        # Wait until the watcher has printed the first epoch, however slowly it started.
        assert watcher.stdout is not None
        ready, _, _ = select.select([watcher.stdout], [], [], 30)
        assert ready, "the watcher printed no map"
        seen_first = json.loads(watcher.stdout.readline())
        assert seen_first["epoch"] == first["epoch"]
        second = json.loads(cli("epoch", "tick", "-f", "fleet", "-o", "json").stdout)
        assert second["epoch"] == first["epoch"] + 1
        assert second["members"]["leaf2"] == "MAINTENANCE"
        out, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        cli("device", "set-status", "leaf2", "--status", "activated")
    assert watcher.returncode == 0, err
    seen = [seen_first, *(json.loads(line) for line in out.splitlines())]
    assert [m["epoch"] for m in seen][-1] == second["epoch"]
    assert seen[-1]["members"]["leaf2"] == "MAINTENANCE"

    table = cli("map", "-f", "fleet", "--epoch", str(first["epoch"]))
    assert table.exit_code == 0
    assert f"fabric fleet epoch {first['epoch']}" in table.stdout
    assert "leaf2" in table.stdout and "ONLINE" in table.stdout


def test_an_overrun_shows_in_device_list(cli: Server) -> None:
    end = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    entered = cli("maintenance", "enter", "leaf1", "--reason", "swap", "--expected-end", end, *FAST)
    assert entered.exit_code == 0, entered.stderr
    deadline = time.monotonic() + 15
    listed = ""
    while time.monotonic() < deadline:
        listed = cli("device", "list", "-f", "fleet").stdout
        if "overran" in listed:
            break
        time.sleep(0.2)
    line = next((ln for ln in listed.splitlines() if "leaf1" in ln), "")
    assert "! maintenance overran its expected end" in line, listed
    flagged = json.loads(
        cli("device", "list", "-f", "fleet", "--needs-attention", "-o", "json").stdout
    )
    assert [d["name"] for d in flagged] == ["leaf1"]
    assert cli("maintenance", "exit", "leaf1", *FAST).exit_code == 0
    back = json.loads(cli("device", "show", "leaf1", "-o", "json").stdout)
    assert (back["status"], back["needs_attention"]) == ("activated", False)
