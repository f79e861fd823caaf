"""A campaign's action as it runs: an argv, never a shell, with a timeout and a minimal
environment."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace

import pytest

from pitstop.domain.argv_templates import DeviceFields
from pitstop.engine.campaign_actions import command_environment, render, run_command

FIELDS = DeviceFields(
    name="leaf1", fabric="dc1", role="leaf", host="h", port="", campaign="c", labels={"rack": "r1"}
)


def test_templates_fill_device_variables_and_refuse_unknown_ones() -> None:
    assert render(["upgrade", "{name}", "--rack={labels[rack]}"], FIELDS) == [
        "upgrade",
        "leaf1",
        "--rack=r1",
    ]
    with pytest.raises(ValueError, match=re.escape("argument 1 '{nmae}'")):
        render(["upgrade", "{nmae}"], FIELDS)


async def test_a_device_name_is_one_argument_never_shell_syntax() -> None:
    argv = render(
        [sys.executable, "-c", "import sys; print(sys.argv[1:])", "{name}"],
        replace(FIELDS, name="x; rm -rf /"),
    )
    result = await run_command(argv, timeout_s=30)
    assert result.ok and result.output.strip() == "['x; rm -rf /']"


async def test_a_failing_or_slow_command_fails_with_its_output() -> None:
    failing = await run_command(
        [sys.executable, "-c", "print('no'); raise SystemExit(4)"], timeout_s=30
    )
    assert (failing.ok, failing.exit_code, failing.output, failing.detail) == (
        False,
        4,
        "no\n",
        "exited 4",
    )
    slow = await run_command([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5)
    assert not slow.ok and slow.detail == "timed out after 0.5 s (killed)"
    missing = await run_command(["/nonexistent/tool"], timeout_s=5)
    assert not missing.ok and missing.detail.startswith("cannot run '/nonexistent/tool'")


async def test_the_program_gets_a_minimal_environment_without_the_servers_secrets() -> None:
    server = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PITSTOP_TOKEN": "pst_secret",
        "PITSTOP_DATABASE_URL": "postgresql+asyncpg://pitstop:hunter2@db/pitstop",
        "AWS_SECRET_ACCESS_KEY": "k",
    }
    env = command_environment(server)
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    result = await run_command([sys.executable, "-c", dump], timeout_s=30, env=env)
    seen = json.loads(result.output)
    assert not {k for k in seen if k.startswith(("PITSTOP_", "AWS_"))}


async def test_by_default_the_servers_own_environment_is_filtered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PITSTOP_TOKEN", "pst_secret")
    dump = "import os; print(os.environ.get('PITSTOP_TOKEN', 'absent'))"
    result = await run_command([sys.executable, "-c", dump], timeout_s=30)
    assert result.output.strip() == "absent"
