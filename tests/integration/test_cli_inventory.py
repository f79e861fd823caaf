"""``pitstop device delete``, ``fabric delete`` and ``fabric group-delete`` against a real
``pitstop serve``, and ``device list`` in an 80-column terminal.

Each test imports a fabric of its own, so the tests run alone or in any order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cli_server import ServerProcess, child_env, new_token, sqlite_url
from typer.testing import CliRunner, Result

from pitstop.cli import deletion
from pitstop.cli.main import app


class Cli:
    def __init__(self, url: str, token: str, config: Path) -> None:
        self.url, self.token, self.config = url, token, config

    def __call__(
        self, *args: str, columns: int = 200, stdin: str | None = None, **env: str
    ) -> Result:
        full: Mapping[str, str] = {
            "PITSTOP_URL": self.url,
            "PITSTOP_TOKEN": self.token,
            "PITSTOP_CONFIG": str(self.config),
            "COLUMNS": str(columns),
            "NO_COLOR": "1",
            **env,
        }
        return CliRunner().invoke(app, list(args), env=full, input=stdin, catch_exceptions=False)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def refused(self, code: str, *args: str, **kwargs: Any) -> str:
        """The command fails with ``code`` on stderr and prints nothing on stdout."""
        result = self(*args, **kwargs)
        assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
        assert result.stderr.startswith(f"{code}: "), result.stderr
        assert result.stdout == ""
        return result.stderr

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json").stdout)

    def load(self, tmp: Path, text: str) -> None:
        path = tmp / "inventory.yaml"
        path.write_text(text)
        self.ok("device", "import", str(path))


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    tmp = tmp_path_factory.mktemp("cli-inventory")
    token = new_token()
    env = child_env(
        tmp, PITSTOP_DATABASE_URL=sqlite_url(tmp / "inventory.db"), PITSTOP_BOOTSTRAP_TOKEN=token
    )
    with ServerProcess("serve", env=env, log=tmp / "server.log") as server:
        yield Cli(server.url, token, tmp / "login.json")


def _fabric(name: str, *devices: str) -> str:
    rows = "\n".join(f"      - {{name: {d}, role: leaf, groups: [pair]}}" for d in devices)
    return (
        f"fabrics:\n  - name: {name}\n    groups: [{{name: pair, max_unavailable: 1}}]\n"
        f"    devices:\n{rows}\n"
    )


# Deleting ------------------------------------------------------------------------------------


def test_a_decommissioned_device_then_its_empty_fabric_are_deleted(
    cli: Cli, tmp_path: Path
) -> None:
    cli.load(tmp_path, _fabric("gone", "gone1", "gone2"))

    # The server decides what may go: an activated device is refused, and nothing changes.
    stderr = cli.refused("CONFLICT", "device", "delete", "gone1", "--yes")
    assert "only pending or decommissioned devices can be deleted" in stderr
    stderr = cli.refused("CONFLICT", "fabric", "delete", "gone", "--yes")
    assert "still has 2 devices" in stderr

    for name in ("gone1", "gone2"):
        cli.ok("device", "set-status", name, "--status", "decommissioned", "--reason", "sold")
        deleted = cli.ok("device", "delete", name, "--fabric", "gone", "--yes")
        assert deleted.stdout == f"Deleted device {name} from fabric gone.\n"
        assert deleted.stderr == ""
        cli.refused("NOT_FOUND", "device", "show", name)
    assert cli.ok("fabric", "delete", "gone", "-y").stdout == "Deleted fabric gone.\n"
    cli.refused("NOT_FOUND", "fabric", "show", "gone")
    actions = [a["action"] for a in cli.json("audit", "--limit", "3")]
    assert actions == ["fabric.delete", "device.delete", "device.status"]


def test_without_a_terminal_delete_needs_yes(cli: Cli, tmp_path: Path) -> None:
    cli.load(tmp_path, _fabric("kept", "kept1"))
    cli.ok("device", "set-status", "kept1", "--status", "decommissioned", "--reason", "old")

    # CliRunner's stdin is no terminal, as in a script or a pipe: no question, no delete.
    stderr = cli.refused("CONFIRMATION_REQUIRED", "device", "delete", "kept1", stdin="y\n")
    assert "pass --yes" in stderr
    assert cli.json("device", "show", "kept1")["status"] == "decommissioned"
    cli.refused("CONFIRMATION_REQUIRED", "fabric", "delete", "kept")
    cli.refused("CONFIRMATION_REQUIRED", "fabric", "group-delete", "kept", "pair")
    assert [g["name"] for g in cli.json("fabric", "show", "kept")["groups"]] == ["pair"]


def test_at_a_terminal_delete_asks_and_takes_only_yes(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.load(tmp_path, _fabric("asked", "asked1"))
    cli.ok("device", "set-status", "asked1", "--status", "decommissioned", "--reason", "old")
    monkeypatch.setattr(deletion, "can_ask", lambda: True)

    declined = cli("device", "delete", "asked1", stdin="n\n")
    assert declined.exit_code == 1
    assert "Delete device asked1 in fabric asked? This cannot be undone." in declined.stderr
    assert "ABORTED: device asked1 in fabric asked was not deleted" in declined.stderr
    assert declined.stdout.strip() == "n"  # CliRunner echoes what was typed, as a terminal does
    assert cli.json("device", "show", "asked1")["status"] == "decommissioned"

    accepted = cli.ok("device", "delete", "asked1", stdin="y\n")
    assert accepted.stdout.endswith("\nDeleted device asked1 from fabric asked.\n")
    cli.refused("NOT_FOUND", "device", "show", "asked1")


def test_group_delete_keeps_its_devices(cli: Cli, tmp_path: Path) -> None:
    cli.load(tmp_path, _fabric("grouped", "grouped1"))
    deleted = cli.ok("fabric", "group-delete", "grouped", "pair", "--yes")
    assert deleted.stdout == "Deleted group pair from fabric grouped.\n"
    assert cli.json("fabric", "show", "grouped")["groups"] == []
    device = cli.json("device", "show", "grouped1")
    assert (device["status"], device["groups"]) == ("activated", [])


# An 80-column terminal -------------------------------------------------------------------------

LONG_NAME = "stor-0001-rack-a-row12"
NARROW = f"""\
fabrics:
  - name: narrow
    groups:
      - {{name: rack-a-row-12, max_unavailable: 1}}
    devices:
      - {{name: {LONG_NAME}, role: storage, groups: [rack-a-row-12]}}
      - {{name: n2, role: storage, groups: [rack-a-row-12]}}
      - {{name: n3, role: storage-gateway}}
"""


def _header_lines(table: str) -> list[str]:
    """The lines between the table's top rule and the rule under its headers."""
    lines = table.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    under = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    return lines[top + 1 : under]


def _headers(table: str) -> list[str]:
    headers = _header_lines(table)
    assert len(headers) == 1, table  # no header is split over two lines
    return [h.strip() for h in headers[0].strip("┃").split("┃")]


def test_results_alone_go_to_stdout(cli: Cli, tmp_path: Path) -> None:
    cli.load(tmp_path, _fabric("piped", "piped1"))
    listed = cli.ok("device", "list", "-f", "piped", "-o", "json")
    assert [d["name"] for d in json.loads(listed.stdout)] == ["piped1"]
    assert listed.stderr == ""
    stderr = cli.refused("NOT_FOUND", "device", "show", "nope", "-o", "json")
    assert stderr.count("nope") == 1


def test_device_list_fits_80_columns_with_whole_headers_and_names(cli: Cli, tmp_path: Path) -> None:
    cli.load(tmp_path, NARROW)
    cli.ok(
        "device", "set-status", "n2", "--status", "draining",
        "--reason", "replace the failed disk in bay 3, then rebuild",
    )  # fmt: skip
    devices = cli.json("device", "list", "-f", "narrow")
    assert len(devices) == 3

    def rows(table: str) -> dict[str, str]:
        found = {
            d["name"]: [ln for ln in table.splitlines() if f"│ {d['name']} " in ln] for d in devices
        }
        assert all(len(lines) == 1 for lines in found.values()), table  # every name whole, once
        return {name: lines[0] for name, lines in found.items()}

    table = cli.ok("device", "list", "-f", "narrow", columns=80).stdout
    assert max(len(line) for line in table.splitlines()) <= 80, table
    # The columns that matter least are left out first; the reason is kept, folded.
    assert _headers(table) == ["NAME", "FABRIC", "STATUS", "REASON", "ATTN"], table
    for d in devices:
        assert "narrow" in rows(table)[d["name"]]
    assert "draining" in rows(table)["n2"]
    assert "bay 3" in table and "rebuild" in table

    # Wide enough, every column is there.
    table = cli.ok("device", "list", "-f", "narrow", columns=160).stdout
    assert _headers(table) == [
        "NAME", "FABRIC", "ROLE", "STATUS", "REASON", "SET BY", "GROUPS", "ATTN",
    ]  # fmt: skip
    assert "replace the failed disk in bay 3, then rebuild" in rows(table)["n2"]

    # Too narrow even for the name and status: the table is printed wider than the terminal
    # (which wraps it) rather than cut a name.
    table = cli.ok("device", "list", "-f", "narrow", columns=40).stdout
    assert _headers(table) == ["NAME", "STATUS", "ATTN"], table
    rows(table)


def test_the_audit_fits_80_columns(cli: Cli, tmp_path: Path) -> None:
    cli.load(tmp_path, _fabric("audited", "audited1"))
    cli.ok("device", "set-status", "audited1", "--status", "draining", "--ticket", "CHG-77")

    table = cli.ok("audit", "--limit", "5", columns=80).stdout
    assert max(len(line) for line in table.splitlines()) <= 80, table
    assert _headers(table) == ["SEQ", "AT", "ACTION", "DEVICE", "CHANGE", "REASON"], table
    assert "activated ->" in table and "draining" in table

    table = cli.ok("audit", "--limit", "5", columns=160).stdout
    assert "audited/audited1" in table and "CHG-77" in table
    assert _headers(table) == [
        "SEQ", "AT", "ACTOR", "VIA", "ACTION", "DEVICE", "CHANGE", "REASON", "TICKET",
    ]  # fmt: skip
