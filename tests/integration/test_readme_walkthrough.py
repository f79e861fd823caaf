"""The README's Quick start, run top to bottom against a real ``pitstop demo``.

The commands are read from README.md itself (the ``$ pitstop ...`` lines of the ``console``
blocks under "## Quick start"), so the test fails as soon as the README and pitstop drift
apart: a file the README names that does not ship, a device name that became ambiguous, a
command or option that changed. Set-up lines (``make``, ``source``, ``export``) are what the
test does itself: it starts the demo and sets PITSTOP_URL and PITSTOP_TOKEN. Commands run
in-process through Typer's CliRunner, as the other CLI tests do, from the repository root and
at 80 columns (``test_cli.py`` runs the installed console script itself).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from cli_server import ServerProcess, child_env, sqlite_url
from typer.testing import CliRunner, Result

from pitstop.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SET_UP = ("make", "source", "export")
# Commands that need root or a lab this machine may not have.
NEEDS_ROOT = (("pitstop", "lab"),)
ADMIN_TOKEN = re.compile(r"^Admin token \(shown once, store it now\): (pst_[\w-]+)$", re.M)


def quick_start(readme: str) -> str:
    """The text of the "## Quick start" section."""
    match = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.M | re.S)
    assert match, "README.md has no '## Quick start' section"
    return match.group(1)


def console_commands(section: str) -> list[list[str]]:
    """Every ``$ ...`` line of the section's ``console`` blocks, split as a shell would (and
    without its trailing comment), in order."""
    commands: list[list[str]] = []
    for block in re.findall(r"^```console\n(.*?)^```", section, re.M | re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(shlex.split(line[2:], comments=True))
    return commands


def walkthrough() -> list[list[str]]:
    commands = console_commands(quick_start(README.read_text()))
    return [
        argv
        for argv in commands
        if argv[0] not in SET_UP and not any(tuple(argv[:2]) == r for r in NEEDS_ROOT)
    ]


def test_the_walkthrough_is_read_from_the_readme() -> None:
    commands = console_commands(quick_start(README.read_text()))
    firsts = {argv[0] for argv in commands}
    assert firsts <= {"pitstop", *SET_UP}, firsts  # every other line is a pitstop command
    # The set-up the test does itself is the set-up the README asks for.
    exports = " ".join(" ".join(argv) for argv in commands if argv[0] == "export")
    assert "PITSTOP_URL=" in exports and "PITSTOP_TOKEN=" in exports
    steps = [" ".join(argv[1:3]) for argv in walkthrough()]
    assert len(steps) >= 15, steps
    for expected in ("device import", "maintenance enter", "maintenance exit", "device delete"):
        assert expected in steps, steps


def test_the_quick_start_runs_top_to_bottom_on_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = child_env(tmp_path, PITSTOP_DATABASE_URL=sqlite_url(tmp_path / "demo.db"))
    monkeypatch.chdir(ROOT)  # the README's paths (examples/...) are from the repository root
    with ServerProcess("demo", env=env, log=tmp_path / "demo.log") as demo:
        tokens = ADMIN_TOKEN.findall(demo.output())
        assert len(tokens) == 1, demo.output()
        user = {
            "PITSTOP_URL": demo.url,
            "PITSTOP_TOKEN": tokens[0],
            "PITSTOP_CONFIG": str(tmp_path / "login.json"),
            "COLUMNS": "80",  # a plain terminal
        }

        def run(argv: list[str]) -> Result:
            assert argv[0] == "pitstop"
            return CliRunner().invoke(app, argv[1:], env=user, catch_exceptions=False)

        for argv in walkthrough():
            done = run(argv)
            assert done.exit_code == 0, (
                f"README step failed: {shlex.join(argv)}\nexit {done.exit_code}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nserver:\n{demo.output()}"
            )

        # The walkthrough leaves the demo fleet as it found it.
        devices = json.loads(run(["pitstop", "device", "list", "-o", "json"]).stdout)
        assert len(devices) == 22
        assert {d["status"] for d in devices} == {"activated"}
        jobs = json.loads(run(["pitstop", "job", "list", "-o", "json"]).stdout)
        assert {j["status"] for j in jobs} == {"succeeded"}
        assert len(jobs) == 3  # the test run, the activation and the exit


@pytest.mark.parametrize("name", ["inventory.yaml", "campaign.yaml"])
def test_each_example_file_is_used_by_the_readme(name: str) -> None:
    assert (ROOT / "examples" / name).is_file()
    assert f"examples/{name}" in README.read_text()
