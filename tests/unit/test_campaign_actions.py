"""A campaign's command action: an argv template, never a shell, with a timeout."""

from __future__ import annotations

import re
import sys

import pytest

from pitstop.engine.campaign_actions import render, run_command


def test_templates_fill_device_variables_and_refuse_unknown_ones() -> None:
    values = {"name": "leaf1", "labels": {"rack": "r1"}}
    assert render(["upgrade", "{name}", "--rack={labels[rack]}"], values) == [
        "upgrade",
        "leaf1",
        "--rack=r1",
    ]
    with pytest.raises(ValueError, match=re.escape("argument 1 '{nmae}'")):
        render(["upgrade", "{nmae}"], values)


async def test_a_device_name_is_one_argument_never_shell_syntax() -> None:
    argv = render(
        [sys.executable, "-c", "import sys; print(sys.argv[1:])", "{name}"], {"name": "x; rm -rf /"}
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
