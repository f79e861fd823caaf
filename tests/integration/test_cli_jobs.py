"""``pitstop maintenance``, ``healthcheck`` and ``job`` against a real ``pitstop serve`` with
its worker: live progress and logs, exit status, and failed checks shown with their values."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
  - name: jobs
    groups: [{name: spines, max_unavailable: 1}]
    devices:
      - {name: spine1, role: spine, groups: [spines], labels: {sim.convergence_s: "1"}}
      - {name: spine2, role: spine, groups: [spines], labels: {sim.convergence_s: "1"}}
      - {name: sick1, role: leaf, labels: {sim.fault: high-cpu}}
      - {name: leaf2, role: leaf}
"""


class Server:
    def __init__(self, url: str, token: str, config: Path) -> None:
        self.url, self.token, self.config = url, token, config

    def __call__(self, *args: str) -> Any:
        env = {
            "PITSTOP_URL": self.url,
            "PITSTOP_TOKEN": self.token,
            "PITSTOP_CONFIG": str(self.config),
            "COLUMNS": "200",
        }
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("cli-jobs")
    token = new_token()
    env = child_env(
        tmp, PITSTOP_DATABASE_URL=sqlite_url(tmp / "jobs.db"), PITSTOP_BOOTSTRAP_TOKEN=token
    )
    with ServerProcess("serve", env=env, log=tmp / "server.log") as server:
        r = httpx.post(
            f"{server.url}/api/v1/inventory/import",
            content=LAB,
            params={"format": "yaml"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        yield Server(server.url, token, tmp / "login.json")


def test_enter_and_exit_follow_the_job_to_maintenance_and_back(cli: Server) -> None:
    entered = cli(
        "maintenance", "enter", "spine1", "--reason", "PSU swap", "--ticket", "CHG-9", *FAST
    )
    assert entered.exit_code == 0, entered.stderr
    assert "verify_drain: drained in" in entered.stderr
    assert "mark_maintenance: status maintenance" in entered.stderr
    # The live log is on stderr; the verdict, the command's result, alone on stdout.
    assert entered.stdout == "maintenance.activate on spine1: succeeded\n"
    shown = json.loads(cli("device", "show", "spine1", "-o", "json").stdout)
    assert shown["status"] == "maintenance"
    assert shown["maintenance"]["ticket"] == "CHG-9"

    busy = cli("maintenance", "enter", "spine1", "--reason", "again", *FAST)
    assert busy.exit_code == 1
    assert busy.stderr.startswith("DEVICE_UNDER_MAINTENANCE")

    left = cli("maintenance", "exit", "spine1", "--revert-config", *FAST)
    assert left.exit_code == 0, left.stderr
    assert "config_check: the configuration is as the diversion left it" in left.stderr
    assert "compare: post-maintenance state matches the snapshot" in left.stderr
    assert json.loads(cli("device", "show", "spine1", "-o", "json").stdout)["status"] == "activated"

    jobs = json.loads(cli("job", "list", "--device", "spine1", "-o", "json").stdout)
    assert [j["type"] for j in jobs] == ["maintenance.deactivate", "maintenance.activate"]
    assert all(j["status"] == "succeeded" for j in jobs)
    assert jobs[0]["advanced_parameters"]["undrain"]["revert_config"] is True
    assert "revert_config" not in jobs[1]["advanced_parameters"].get("undrain", {})
    logs = cli("job", "logs", jobs[1]["id"][:8])
    assert logs.exit_code == 0
    assert "divert: diversion graceful-shutdown applied" in logs.stdout


def test_a_failed_test_run_exits_1_and_shows_the_check_with_its_values(cli: Server) -> None:
    result = cli("maintenance", "enter", "sick1", "--reason", "check", "--test-run", *FAST)
    assert result.exit_code == 1
    assert "maintenance.activate on sick1: failed" in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if "FAIL cpu_idle" in ln)
    assert "observed 20" in line and "threshold 60" in line
    assert json.loads(cli("device", "show", "sick1", "-o", "json").stdout)["status"] == "activated"

    relaxed = cli(
        "healthcheck",
        "sick1",
        "--set",
        "checks.cpu_idle.min_pct=10",
        "--set",
        "sample_interval_s=0.2",
    )
    assert relaxed.exit_code == 0, relaxed.stderr


def test_no_follow_queues_and_json_output_is_the_job(cli: Server) -> None:
    queued = cli(
        "healthcheck", "leaf2", "--no-follow", "-o", "json", "--set", "sample_interval_s=0.2"
    )
    assert queued.exit_code == 0
    job = json.loads(queued.stdout)
    assert job["type"] == "healthcheck" and job["status"] in ("queued", "running")
    followed = cli("job", "logs", job["id"], "-f", "-o", "json")
    assert followed.exit_code == 0
    assert json.loads(followed.stdout)["status"] == "succeeded"
    shown = json.loads(cli("job", "show", job["id"], "-o", "json").stdout)
    assert [s["name"] for s in shown["steps"]] == ["health", "verdict"]
    assert shown["result"]["checks"]


def test_job_show_lists_the_parameters_the_job_runs_with(cli: Server) -> None:
    queued = cli(
        "healthcheck", "leaf2", "--no-follow", "-o", "json", "--set", "sample_interval_s=0.2"
    )
    assert queued.exit_code == 0, queued.stderr
    job = json.loads(queued.stdout)
    assert job["effective_parameters"]["sample_interval_s"] == 0.2
    assert job["effective_parameters"]["checks"]["memory"]["max_pct"] == 80
    assert cli("job", "logs", job["id"], "-f", "-o", "json").exit_code == 0
    shown = cli("job", "show", job["id"])
    assert shown.exit_code == 0, shown.stderr
    assert "Parameters it runs with" in shown.stdout
    lines = shown.stdout.splitlines()
    assert any("sample_interval_s *" in ln and "0.2" in ln for ln in lines), shown.stdout
    assert any("checks.memory.max_pct" in ln and "80" in ln for ln in lines), shown.stdout
