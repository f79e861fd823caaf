"""``pitstop action`` against a real ``pitstop serve``: an admin defines an action from flags
and from a file, an operator may not, and an operator's campaign runs the admin's action in
the server, with the device's fields and without the server's PITSTOP_* settings."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from cli_server import ServerProcess, child_env, new_token, sqlite_url
from typer.testing import CliRunner, Result

from pitstop.cli.main import app

LAB = """
fabrics:
  - name: roll
    groups:
      - {name: pair-a, max_unavailable: 1}
    devices:
      - {name: leaf1, role: leaf, groups: [pair-a], labels: {sim.convergence_s: "0", rack: r1}}
      - {name: leaf2, role: leaf, groups: [pair-a], labels: {sim.convergence_s: "0", rack: r2}}
"""
FAST = {
    "sample_interval_s": 0,
    "drain": {"poll_interval_s": 0.1},
    "undrain": {"poll_interval_s": 0.1},
}
# Appends its arguments, and whether it saw any PITSTOP_* variable, to the file named first.
RECORD = (
    "import os, sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + ' secrets='"
    " + str(any(k.startswith('PITSTOP_') for k in os.environ)) + '\\n')"
)


def _cli(url: str, token: str, tmp: Path, *args: str) -> Result:
    env = {
        "PITSTOP_URL": url,
        "PITSTOP_TOKEN": token,
        "PITSTOP_CONFIG": str(tmp / "login.json"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
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


def test_an_admin_defines_an_action_and_an_operators_campaign_runs_it(tmp_path: Path) -> None:
    token = new_token()
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=sqlite_url(tmp_path / "actions.db"),
        PITSTOP_BOOTSTRAP_TOKEN=token,
        PITSTOP_SIM_STATE_DIR=str(tmp_path / "sim"),
        PITSTOP_CAMPAIGN_POLL_INTERVAL_S="0.1",
    )
    ran = tmp_path / "ran.txt"
    headers = {"Authorization": f"Bearer {token}"}
    server = ServerProcess("serve", env=env, log=tmp_path / "server.log")
    with server, httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        r = http.post("/api/v1/inventory/import", content=LAB, params={"format": "yaml"})
        assert r.status_code == 200, r.text
        admin = lambda *a: _cli(server.url, token, tmp_path, *a)  # noqa: E731
        made = http.post("/api/v1/tokens", json={"name": "ops", "role": "operator"})
        ops_token = made.json()["token"]
        ops = lambda *a: _cli(server.url, ops_token, tmp_path, *a)  # noqa: E731

        command = shlex.join([sys.executable, "-c", RECORD, str(ran), "{name}", "{labels[rack]}"])
        created = admin(
            "action", "create", "record", "--command", command, "--fabric", "roll",
            "--timeout", "60", "--description", "writes what it ran",
        )  # fmt: skip
        assert created.exit_code == 0, created.output
        listed = json.loads(admin("action", "list", "-o", "json").output)
        assert [(a["name"], a["command"][-2:], a["fabrics"]) for a in listed] == [
            ("record", ["{name}", "{labels[rack]}"], ["roll"])
        ]
        spec = tmp_path / "other.yaml"
        spec.write_text(yaml.safe_dump({"name": "other", "command": ["true"], "undo": ["false"]}))
        assert admin("action", "create", "--file", str(spec)).exit_code == 0
        shown = admin("action", "show", "other")
        assert "undo" in shown.output and "all" in shown.output
        assert admin("action", "delete", "other").exit_code == 0

        refused = ops("action", "create", "mine", "--command", "sh -c id")
        assert refused.exit_code == 1 and "FORBIDDEN" in refused.output
        bad = admin("action", "create", "bad", "--command", "upgrade {labels.__class__}")
        assert bad.exit_code == 1 and "VALIDATION_FAILED" in bad.output

        definition = tmp_path / "roll.yaml"
        base = {"name": "roll", "fabric": "roll", "selector": {"roles": ["leaf"]}}
        inline = {**base, "action": {"type": "command", "command": ["sh", "-c", "id"]}}
        definition.write_text(yaml.safe_dump(inline))
        refused = ops("campaign", "create", str(definition))
        assert refused.exit_code == 1 and "CAMPAIGN_INVALID" in refused.output
        run = {**base, "action": {"type": "run", "name": "record"}, "advanced_parameters": FAST}
        definition.write_text(yaml.safe_dump(run))
        assert ops("campaign", "create", str(definition)).exit_code == 0
        started = ops("campaign", "start", "roll")
        assert started.exit_code == 0, started.output

        def finished() -> Any:
            state = http.get("/api/v1/campaigns/roll").json()["state"]
            return state if state in ("succeeded", "failed", "validation_failed") else None

        assert _wait(finished, 120, "the campaign to finish") == "succeeded", server.output()
        assert sorted(ran.read_text().splitlines()) == [
            "leaf1 r1 secrets=False",
            "leaf2 r2 secrets=False",
        ]
