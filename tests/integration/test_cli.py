"""The ``pitstop`` command line against a real ``pitstop serve`` process.

One server runs for the whole module (SQLite in a temporary directory, a known bootstrap admin
token). Commands run in-process through Typer's ``CliRunner`` with PITSTOP_URL, PITSTOP_TOKEN and
PITSTOP_CONFIG set for each call, so nothing reads or writes the real login file; one command
runs through the installed console script to prove the entry point reports errors the same way.

State the tests share is built by module fixtures (the ``lab`` fabric, the viewer token, the
spine1 maintenance round trip, the ``notes`` fabric), so every test can run alone or in any
order. A test that changes a device uses one no other test changes, or puts it back.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_server import ServerProcess, child_env, free_port, new_token, sqlite_url
from typer.testing import CliRunner, Result

from pitstop.cli.main import app
from pitstop.storage.migrate import head_revision

BOOTSTRAP_NAME = "bootstrap-admin"

INVENTORY = """\
fabrics:
  - name: lab
    description: Lab fabric for the CLI tests
    labels: {site: test}
    groups:
      - {name: spines, max_unavailable: 1, description: Spine layer}
    devices:
      - {name: spine1, role: spine, groups: [spines], labels: {rack: r1}}
      - {name: spine2, role: spine, groups: [spines], labels: {rack: r2}}
      - {name: leaf1, role: leaf, labels: {rack: r1}}
"""

# Row 1 and the whole second fabric are fine; rows 2-4 are not, so nothing may be written.
BAD_INVENTORY = """\
fabrics:
  - name: lab
    devices:
      - {name: newdev1, role: leaf}
      - {name: spine1, role: spine}
      - {name: Bad_Name!, role: leaf}
      - {name: leaf9, role: leaf, groups: [nope]}
  - name: lab-bad
    devices:
      - {name: fine1, role: leaf}
"""


# The server and the runner -----------------------------------------------------------------


@dataclass
class Server:
    url: str
    token: str
    process: ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``pitstop serve`` on a free port, with its own SQLite file and bootstrap token."""
    home = tmp_path_factory.mktemp("cli-server")
    token = new_token()
    env = child_env(
        home,
        PITSTOP_DATABASE_URL=sqlite_url(home / "cli.db"),
        PITSTOP_BOOTSTRAP_TOKEN=token,
    )
    proc = ServerProcess("serve", env=env, log=home / "server.log")
    with proc:
        yield Server(url=proc.url, token=token, process=proc)
    # SIGTERM shuts down cleanly (uvicorn re-raises the signal once done), with no need to kill.
    assert proc.proc.returncode in (0, -signal.SIGTERM), proc.output()
    assert "Application shutdown complete" in proc.output()


class _Unset:
    """Marks an argument left out (None means: unset the variable)."""


_UNSET = _Unset()


@dataclass
class Cli:
    """Runs ``pitstop`` in-process against one server, as one user with one login file.

    Every call sets PITSTOP_URL, PITSTOP_TOKEN and PITSTOP_CONFIG (``url=None`` or ``token=None``
    unsets one, to make the CLI fall back to the login file)."""

    url: str
    token: str | None
    config: Path

    def __call__(
        self,
        *args: str,
        token: str | _Unset | None = _UNSET,
        url: str | _Unset | None = _UNSET,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        full_env: dict[str, str | None] = {
            "PITSTOP_URL": self.url if isinstance(url, _Unset) else url,
            "PITSTOP_TOKEN": self.token if isinstance(token, _Unset) else token,
            "PITSTOP_CONFIG": str(self.config),
            "PITSTOP_DATABASE_URL": None,
            "PITSTOP_BOOTSTRAP_TOKEN": None,
            # Wide enough that no table cell is folded onto a second line.
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
        full_env.update(env or {})
        # catch_exceptions=False: a crash surfaces with its traceback instead of exit code 1.
        return CliRunner().invoke(app, list(args), env=full_env, catch_exceptions=False)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="module")
def admin(server: Server, cli_home: Path) -> Cli:
    """The bootstrap admin. Its login file is never written (tests of login use their own)."""
    return Cli(server.url, server.token, cli_home / "admin" / "login.json")


def ok(result: Result) -> Result:
    """Assert a command succeeded, showing its output when it did not."""
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def refused(result: Result, code: str) -> list[str]:
    """Assert a command failed with ``code`` first on stderr, and nothing on stdout; return
    the stderr lines."""
    assert result.exit_code == 1, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert result.stderr.startswith(f"{code}: "), result.stderr
    assert result.stdout == "", result.stdout
    return result.stderr.splitlines()


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def table_row(text: str, name: str) -> str:
    """The line of a table whose first cell is ``name``."""
    rows = [line for line in text.splitlines() if re.match(rf"^\W*{re.escape(name)}\s", line)]
    assert len(rows) == 1, f"expected one row for {name!r} in:\n{text}"
    return rows[0]


def device(admin: Cli, name: str, fabric: str = "lab") -> dict[str, Any]:
    data: dict[str, Any] = as_json(admin("device", "show", name, "-f", fabric, "-o", "json"))
    return data


def device_count(admin: Cli) -> int:
    return len(as_json(admin("device", "list", "-o", "json")))


# Shared state ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(admin: Cli, tmp_path_factory: pytest.TempPathFactory) -> Result:
    """The ``lab`` fabric, imported through ``pitstop device import``."""
    path = tmp_path_factory.mktemp("inventory") / "inventory.yaml"
    path.write_text(INVENTORY)
    return ok(admin("device", "import", str(path)))


@pytest.fixture(scope="module")
def viewer(admin: Cli, lab: Result) -> Cli:
    """A viewer token named v1, made with ``pitstop token create``."""
    created = as_json(admin("token", "create", "--name", "v1", "--role", "viewer", "-o", "json"))
    assert created["name"] == "v1"
    assert created["role"] == "viewer"
    assert created["token"].startswith("pst_")
    return Cli(admin.url, created["token"], admin.config.parent.parent / "viewer" / "login.json")


@dataclass
class Step:
    status: str
    result: Result


@pytest.fixture(scope="module")
def spine1_round_trip(admin: Cli, lab: Result) -> dict[str, Any]:
    """spine1 taken out of service and brought back by hand, with what the CLI said at each
    step, plus the device as shown while draining and the list as shown in maintenance."""
    steps: list[Step] = []
    seen: dict[str, Any] = {"steps": steps}
    for status in ("draining", "maintenance", "undraining", "activated"):
        args = ["device", "set-status", "spine1", "--fabric", "lab", "--status", status]
        if status == "draining":
            args += ["--reason", "swap optics", "--ticket", "CHG-42"]
        steps.append(Step(status, admin(*args)))
        if status == "draining":
            seen["show"] = admin("device", "show", "spine1", "-f", "lab")
        if status == "maintenance":
            seen["list"] = admin("device", "list", "-f", "lab")
    return seen


# 1. Import ---------------------------------------------------------------------------------


def test_import_creates_the_fabric_its_group_and_devices(admin: Cli, lab: Result) -> None:
    assert lab.stdout.strip() == "Created 1 fabrics, 1 groups and 3 devices."

    devices = as_json(admin("device", "list", "-f", "lab", "-o", "json"))
    assert sorted(d["name"] for d in devices) == ["leaf1", "spine1", "spine2"]
    assert {d["fabric"] for d in devices} == {"lab"}
    # Other tests move spine1 and leaf1, but always back into service before they end.
    assert {d["status"] for d in devices} == {"activated"}
    by_name = {d["name"]: d for d in devices}
    assert by_name["spine2"]["status"] == "activated"
    assert by_name["spine2"]["groups"] == ["spines"]
    assert by_name["leaf1"]["groups"] == []

    fabric = as_json(admin("fabric", "show", "lab", "-o", "json"))
    assert fabric["description"] == "Lab fabric for the CLI tests"
    assert fabric["labels"] == {"site": "test"}
    assert [(g["name"], g["max_unavailable"], g["members"]) for g in fabric["groups"]] == [
        ("spines", "1", 2)
    ]


# 2. Status by hand -------------------------------------------------------------------------


def test_set_status_walks_the_maintenance_round_trip(spine1_round_trip: dict[str, Any]) -> None:
    steps: list[Step] = spine1_round_trip["steps"]
    assert [s.status for s in steps] == ["draining", "maintenance", "undraining", "activated"]
    for version, step in enumerate(steps, start=2):
        ok(step.result)
        words = step.result.stdout.split()
        assert words == ["spine1", "is", "now", step.status, "(version", f"{version})"]


def test_device_show_says_status_reason_and_who(spine1_round_trip: dict[str, Any]) -> None:
    text = ok(spine1_round_trip["show"]).stdout
    fields = {
        key.strip(): value.strip()
        for key, value in (
            re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines()
        )
    }
    assert fields["name"] == "spine1"
    assert fields["fabric"] == "lab"
    assert fields["status"] == "draining"
    assert fields["status reason"] == "swap optics"
    assert fields["status set by"] == BOOTSTRAP_NAME
    assert fields["maintenance reason"] == "swap optics"
    assert fields["ticket"] == "CHG-42"
    assert fields["requested by"] == BOOTSTRAP_NAME
    assert fields["version"] == "2"
    assert fields["may move to"] == "maintenance, activated, error"


def test_device_list_table_shows_the_status_word(spine1_round_trip: dict[str, Any]) -> None:
    text = ok(spine1_round_trip["list"]).stdout
    header = table_row(text, "NAME")
    assert "STATUS" in header
    assert "SET BY" in header
    spine1 = table_row(text, "spine1")
    assert " maintenance " in spine1
    assert BOOTSTRAP_NAME in spine1
    assert " activated " in table_row(text, "spine2")


def test_the_round_trip_leaves_spine1_in_service(
    admin: Cli, spine1_round_trip: dict[str, Any]
) -> None:
    d = device(admin, "spine1")
    assert d["status"] == "activated"
    assert d["version"] == 5
    assert d["status_changed_by"] == BOOTSTRAP_NAME
    assert d["maintenance"]["requested_by"] is None


# 3. Audit ----------------------------------------------------------------------------------


def test_audit_lists_the_round_trip_newest_first(
    admin: Cli, spine1_round_trip: dict[str, Any]
) -> None:
    rows = as_json(admin("audit", "--device", "spine1", "-o", "json"))
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs, reverse=True)
    moves = [r for r in rows if r["action"] == "device.status"]
    assert [(r["from_status"], r["to_status"]) for r in moves] == [
        ("undraining", "activated"),
        ("maintenance", "undraining"),
        ("draining", "maintenance"),
        ("activated", "draining"),
    ]
    assert {(r["via"], r["actor"], r["device"], r["fabric"]) for r in moves} == {
        ("cli", BOOTSTRAP_NAME, "spine1", "lab")
    }
    assert (moves[-1]["reason"], moves[-1]["ticket"]) == ("swap optics", "CHG-42")
    # The import's device.create row is older than every status change.
    assert [r["action"] for r in rows][-1] == "device.create"


def test_audit_table_and_filters(admin: Cli, spine1_round_trip: dict[str, Any]) -> None:
    text = ok(admin("audit", "--device", "spine1", "--action", "device.status")).stdout
    assert "activated -> draining" in text
    assert "undraining -> activated" in text
    assert "device.create" not in text
    assert "lab/spine1" in text

    limited = as_json(admin("audit", "--device", "spine1", "--limit", "2", "-o", "json"))
    assert [r["to_status"] for r in limited] == ["activated", "undraining"]


def test_audit_verify_says_intact(admin: Cli, spine1_round_trip: dict[str, Any]) -> None:
    result = ok(admin("audit", "verify"))
    assert re.fullmatch(r"Audit chain intact: \d+ rows verified\.\n", result.stdout)
    assert result.stderr == ""
    verdict = as_json(admin("audit", "verify", "-o", "json"))
    assert verdict["ok"] is True
    assert verdict["problems"] == []
    assert verdict["checked"] >= 9  # fabric, group, 3 devices, 4 status changes


# 4. Refusals -------------------------------------------------------------------------------


def test_illegal_transition_is_refused_with_the_allowed_targets(admin: Cli, lab: Result) -> None:
    lines = refused(
        admin("device", "set-status", "spine2", "-f", "lab", "--status", "maintenance"),
        "TRANSITION_NOT_ALLOWED",
    )
    assert "cannot move from activated to maintenance" in lines[0]
    # The detail already names the allowed statuses, so they are not printed a second time.
    assert "draining, error, decommissioned" in lines[0]
    assert "\n".join(lines).count("draining") == 1, lines
    d = device(admin, "spine2")
    assert (d["status"], d["version"]) == ("activated", 1)


def test_stale_version_is_a_conflict(admin: Cli, lab: Result) -> None:
    ok(admin("device", "set-status", "leaf1", "-f", "lab", "--status", "draining"))
    lines = refused(
        admin(
            "device", "set-status", "leaf1", "-f", "lab", "--status", "activated", "--version", "1"
        ),
        "CONFLICT",
    )
    assert "version 2, not 1" in lines[0]
    unchanged = device(admin, "leaf1")
    assert (unchanged["status"], unchanged["version"]) == ("draining", 2)
    # With the current version the same change goes through.
    ok(
        admin(
            "device", "set-status", "leaf1", "-f", "lab", "--status", "activated", "--version", "2"
        )
    )
    assert device(admin, "leaf1")["status"] == "activated"


def test_viewer_may_read_but_not_change_until_revoked(admin: Cli, viewer: Cli) -> None:
    listed = as_json(viewer("device", "list", "-f", "lab", "-o", "json"))
    assert sorted(d["name"] for d in listed) == ["leaf1", "spine1", "spine2"]
    # A viewer is told it may move nothing.
    assert all(d["allowed_transitions"] == [] for d in listed)
    assert as_json(viewer("whoami", "-o", "json")) == {
        "name": "v1",
        "role": "viewer",
        "fabrics": [],
    }

    lines = refused(
        viewer("device", "set-status", "spine2", "-f", "lab", "--status", "draining"), "FORBIDDEN"
    )
    assert "viewer" in lines[0]
    assert device(admin, "spine2")["status"] == "activated"
    refused(viewer("token", "list"), "FORBIDDEN")

    revoked = ok(admin("token", "revoke", "v1"))
    assert revoked.stdout.strip() == "Token 'v1' revoked."
    lines = refused(viewer("device", "list"), "UNAUTHENTICATED")
    assert "revoked" in lines[0]


def test_each_error_is_printed_once(admin: Cli, lab: Result) -> None:
    # A single bad field: its message is the detail, and it is printed once.
    lines = refused(
        admin("device", "set-status", "spine2", "-f", "lab", "--status", "bogus"),
        "VALIDATION_FAILED",
    )
    assert len(lines) == 1, lines
    assert lines[0].startswith("VALIDATION_FAILED: status: Input should be 'pending'")
    # The field's message says more than the detail: the longer form alone is printed.
    lines = refused(admin("device", "list", "--status", "nope"), "VALIDATION_FAILED")
    assert "\n".join(lines).count("unknown status 'nope'") == 1, lines
    assert "one of pending, activated" in lines[0]


def test_unknown_and_missing_tokens_are_unauthenticated(admin: Cli) -> None:
    refused(admin("device", "list", token=new_token()), "UNAUTHENTICATED")
    refused(admin("fabric", "list", token="not-a-token"), "UNAUTHENTICATED")
    lines = refused(admin("whoami", token=None), "UNAUTHENTICATED")
    assert "send a token" in lines[0]


def test_bad_import_is_refused_row_by_row_and_writes_nothing(
    admin: Cli, lab: Result, tmp_path: Path
) -> None:
    before = device_count(admin)
    audit_before = as_json(admin("audit", "--limit", "1", "-o", "json"))
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_INVENTORY)

    lines = refused(admin("device", "import", str(path)), "VALIDATION_FAILED")

    assert "nothing was written" in lines[0]
    assert "in 3 rows" in lines[0]
    detail = lines[1:]
    assert "  row 2, fabrics[0].devices[1].name: device 'spine1' already exists in lab" in detail
    assert any(line.startswith("  row 3, fabrics[0].devices[2].name: ") for line in detail)
    assert any(
        line.startswith("  row 4, fabrics[0].devices[3].groups: group 'nope'") for line in detail
    )
    assert not any("row 1," in line for line in detail)

    assert device_count(admin) == before
    refused(admin("device", "show", "newdev1", "-f", "lab"), "NOT_FOUND")
    refused(admin("fabric", "show", "lab-bad"), "NOT_FOUND")
    assert as_json(admin("audit", "--limit", "1", "-o", "json")) == audit_before


def test_import_dry_run_writes_nothing(admin: Cli, lab: Result, tmp_path: Path) -> None:
    path = tmp_path / "more.yaml"
    path.write_text("- {name: leaf2, role: leaf}\n- {name: leaf3, role: leaf}\n")
    before = device_count(admin)
    result = ok(admin("device", "import", str(path), "-f", "lab", "--dry-run"))
    assert result.stdout.strip() == "Would create 0 fabrics, 0 groups and 2 devices."
    assert device_count(admin) == before


# 5. Output formats and tokens --------------------------------------------------------------

READS = {
    "device list": ["device", "list"],
    "device show": ["device", "show", "spine2", "-f", "lab"],
    "fabric list": ["fabric", "list"],
    "fabric show": ["fabric", "show", "lab"],
    "audit": ["audit", "--fabric", "lab"],
    "token list": ["token", "list"],
    "whoami": ["whoami"],
}


def _without(data: Any, key: str) -> Any:
    """``data`` with every ``key`` dropped (for values that may change between two calls)."""
    if isinstance(data, dict):
        return {k: _without(v, key) for k, v in data.items() if k != key}
    if isinstance(data, list):
        return [_without(v, key) for v in data]
    return data


@pytest.mark.parametrize("command", list(READS), ids=lambda c: c.replace(" ", "-"))
def test_json_and_yaml_parse_and_agree(admin: Cli, lab: Result, command: str) -> None:
    args = READS[command]
    data: Any = json.loads(ok(admin(*args, "-o", "json")).stdout)
    from_yaml: Any = yaml.safe_load(ok(admin(*args, "--output", "yaml")).stdout)
    assert data, f"{command} printed nothing"
    assert _without(from_yaml, "last_used_at") == _without(data, "last_used_at")
    is_list = command.endswith(("list", "audit"))
    assert isinstance(data, list if is_list else dict) is True
    if command == "device show":
        assert (data["name"], data["fabric"]) == ("spine2", "lab")
    if command == "fabric show":
        assert [g["name"] for g in data["groups"]] == ["spines"]
    if command == "fabric list":
        assert "lab" in [f["name"] for f in data]


def test_token_list_never_prints_a_secret(admin: Cli, viewer: Cli, server: Server) -> None:
    secrets = [server.token, viewer.token]
    for fmt in ("table", "json", "yaml"):
        result = ok(admin("token", "list", "-o", fmt))
        for secret in secrets:
            assert secret
            assert secret not in result.stdout + result.stderr, fmt
    tokens = {t["name"]: t for t in as_json(admin("token", "list", "-o", "json"))}
    assert {"bootstrap-admin", "v1"} <= set(tokens)
    assert all("token" not in t and "hash" not in t for t in tokens.values())
    assert tokens["bootstrap-admin"]["prefix"] == server.token[:12]
    assert tokens["v1"]["role"] == "viewer"
    table = ok(admin("token", "list")).stdout
    assert "admin" in table_row(table, "bootstrap-admin")


def test_token_create_prints_the_secret_once_on_stdout(admin: Cli, lab: Result) -> None:
    result = ok(admin("token", "create", "--name", "ops1", "--role", "operator"))
    secret = result.stdout.strip()
    assert re.fullmatch(r"pst_[A-Za-z0-9_-]{32,}", secret), result.stdout
    assert "shown once" in result.stderr
    assert as_json(admin("whoami", "-o", "json", token=secret))["role"] == "operator"
    refused(admin("token", "create", "--name", "ops1", "--role", "operator"), "CONFLICT")


def test_token_create_refuses_a_lifetime_past_ten_years(admin: Cli) -> None:
    result = admin(
        "token", "create", "--name", "forever", "--role", "viewer", "--expires", "999999999d"
    )
    lines = refused(result, "VALIDATION_FAILED")
    assert "at most 3653 days" in lines[0]
    assert "Traceback" not in result.stderr


def test_the_server_never_logs_the_bootstrap_token(server: Server, lab: Result) -> None:
    log = server.process.output()
    assert "Application startup complete" in log
    assert server.token not in log
    assert "Admin token" not in log  # it was given, so there is nothing to announce


# Free text, colour and file modes -----------------------------------------------------------


@pytest.fixture(scope="module")
def notes(admin: Cli, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A fabric of its own (made with ``fabric create``, filled with a plain device list and
    ``--fabric``) for tests that leave free text on devices."""
    ok(admin("fabric", "create", "notes", "--description", "free-text tests", "-l", "k=v"))
    path = tmp_path_factory.mktemp("notes") / "notes.yaml"
    path.write_text("- {name: note1, role: leaf}\n- {name: note2, role: leaf}\n")
    result = ok(admin("device", "import", str(path), "--fabric", "notes"))
    assert result.stdout.strip() == "Created 0 fabrics, 0 groups and 2 devices."
    return admin


@pytest.mark.parametrize(
    ("name", "reason"),
    [("note1", "[red]optics[/red] swap"), ("note2", "see [/] in the runbook")],
    ids=["tags-vanish", "closing-tag-crashes"],
)
def test_free_text_is_shown_literally_in_tables(notes: Cli, name: str, reason: str) -> None:
    ok(
        notes(
            "device", "set-status", name, "-f", "notes", "--status", "draining", "--reason", reason
        )
    )
    assert device(notes, name, "notes")["status_reason"] == reason  # stored as typed
    shown = notes("device", "show", name, "-f", "notes").stdout
    assert f"status reason       {reason}" in shown
    assert reason in table_row(notes("device", "list", "-f", "notes").stdout, name)
    assert reason in notes("audit", "--device", name).stdout


def test_json_output_stays_plain_when_colour_is_forced(tmp_path: Path) -> None:
    # The CLI's consoles read FORCE_COLOR when they are made, so this needs a fresh process;
    # it renders through the CLI's own console and emit() without starting the whole CLI.
    code = (
        "from pitstop.cli.common import out\n"
        "from pitstop.cli.output import Format, emit\n"
        "emit(out, Format.JSON, [{'name': 'lab', 'labels': {'site': 'test'}, 'n': 1}])\n"
    )
    env = child_env(tmp_path, FORCE_COLOR="1")
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"name": "lab", "labels": {"site": "test"}, "n": 1}]


def test_login_file_is_private_even_over_a_stale_temporary_file(
    server: Server, tmp_path: Path
) -> None:
    config = tmp_path / "login.json"
    stale = tmp_path / "login.tmp"
    stale.write_text("{}")
    stale.chmod(0o644)
    user = Cli(url=server.url, token=None, config=config)
    ok(user("login", "--url", server.url, "--token", server.token))
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


# 6. Login ----------------------------------------------------------------------------------


def test_login_saves_a_private_config_that_later_commands_use(
    server: Server, tmp_path: Path
) -> None:
    config = tmp_path / "conf" / "login.json"
    user = Cli(url=server.url, token=None, config=config)

    result = ok(user("login", "--url", server.url + "/", "--token", server.token, url=None))
    assert f"Logged in to {server.url} as {BOOTSTRAP_NAME} (admin)" in result.stdout
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": server.url, "token": server.token}
    assert sorted(p.name for p in config.parent.iterdir()) == ["login.json"]

    # Neither PITSTOP_URL nor PITSTOP_TOKEN: both come from the file.
    me = as_json(user("whoami", "-o", "json", url=None))
    assert me == {"name": BOOTSTRAP_NAME, "role": "admin", "fabrics": []}

    # A bad token is refused and leaves the saved login alone.
    saved = config.read_text()
    refused(user("login", "--url", server.url, "--token", new_token()), "UNAUTHENTICATED")
    assert config.read_text() == saved


def test_login_with_a_bad_token_writes_nothing(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "conf" / "login.json"
    user = Cli(url=server.url, token=None, config=config)
    refused(user("login", "--url", server.url, "--token", new_token()), "UNAUTHENTICATED")
    assert not config.parent.exists() or list(config.parent.iterdir()) == []


def test_login_reads_the_token_from_a_hidden_prompt(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "login.json"
    result = CliRunner().invoke(
        app,
        ["login", "--url", server.url],
        input=server.token + "\n",
        env={"PITSTOP_CONFIG": str(config), "PITSTOP_TOKEN": None, "PITSTOP_URL": None},
        catch_exceptions=False,
    )
    ok(result)
    assert server.token not in result.stdout
    assert json.loads(config.read_text())["token"] == server.token


# 7. Unreachable server, and the real entry point ----------------------------------------------


def test_unreachable_server(admin: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    lines = refused(admin("device", "list", url=url), "UNREACHABLE")
    assert url in lines[0]
    refused(admin("login", "--url", url, "--token", new_token()), "UNREACHABLE")
    assert not admin.config.exists()


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("pitstop")
    assert script.exists(), f"the console script is not installed next to {sys.executable}"
    return [str(script)]


def test_console_script_prints_the_code_on_stderr(
    server: Server, lab: Result, tmp_path: Path
) -> None:
    env = child_env(
        tmp_path,
        PITSTOP_URL=server.url,
        PITSTOP_TOKEN=server.token,
        PITSTOP_CONFIG=str(tmp_path / "login.json"),
    )
    proc = subprocess.run(
        [
            *_console_script(),
            "device",
            "set-status",
            "spine2",
            "-f",
            "lab",
            "--status",
            "undraining",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    assert proc.stderr.startswith("TRANSITION_NOT_ALLOWED: cannot move from activated"), proc.stderr
    assert "Traceback" not in proc.stderr


# 8. Schema ---------------------------------------------------------------------------------


def test_db_upgrade_on_a_fresh_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fresh.db")
    cli = Cli(url="http://127.0.0.1:9", token=None, config=tmp_path / "login.json")
    for _ in range(2):  # the second run has nothing to do, and says the same
        result = ok(cli("db", "upgrade", env={"PITSTOP_DATABASE_URL": url}))
        assert result.stdout == f"Database at revision {head_revision()}: {url}\n"
    assert (tmp_path / "fresh.db").stat().st_size > 0


# The demo server ---------------------------------------------------------------------------

ADMIN_TOKEN_LINE = re.compile(r"^Admin token \(shown once, store it now\): (pst_[\w-]+)$", re.M)


def test_demo_announces_a_token_that_sees_the_demo_fleet(tmp_path: Path) -> None:
    env = child_env(tmp_path, PITSTOP_DATABASE_URL=sqlite_url(tmp_path / "demo.db"))
    assert "PITSTOP_BOOTSTRAP_TOKEN" not in env
    with ServerProcess("demo", env=env, log=tmp_path / "demo.log") as demo:
        text = demo.output()
        assert f"pitstop demo server on {demo.url}" in text
        assert "Seeded the demo fleet" in text
        tokens = ADMIN_TOKEN_LINE.findall(text)
        assert len(tokens) == 1, text
        user = Cli(url=demo.url, token=tokens[0], config=tmp_path / "login.json")
        assert as_json(user("whoami", "-o", "json"))["role"] == "admin"
        for fabric, count in (("dc1", 10), ("storage", 12)):
            devices = as_json(user("device", "list", "-f", fabric, "-o", "json"))
            assert len(devices) == count, fabric
            assert {d["status"] for d in devices} == {"activated"}
        fabrics = as_json(user("fabric", "list", "-o", "json"))
        assert sorted(f["name"] for f in fabrics) == ["dc1", "storage"]
