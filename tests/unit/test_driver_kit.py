"""The shipped driver contract, run as another distribution would run it (a test module of
its own, outside pitstop's test tree), catches a driver that breaks it, and names the rule."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

THIRD_PARTY = '''
from collections.abc import AsyncIterator

import pytest

from pitstop.drivers.base import DiversionResult
from pitstop.drivers.testing import (
    DriverContract, DriverHarness, FakeDriver, ManualClock, fake_harness,
)


class StickyDriver(FakeDriver):
    """Claims to remove the diversion but leaves it in place."""

    async def remove_maintenance(self, *, method, options):
        return DiversionResult(True, method or "pool-drain", "removed (not really)")


class TestSticky(DriverContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[DriverHarness]:
        async with fake_harness() as h:
            profile = h.driver.capabilities.profile
            h.driver = StickyDriver(h.driver.state, clock=ManualClock(), profile=profile)
            yield h


class TestForgotTheHarness(DriverContract):
    pass
'''


def run_contract(tmp_path: Path) -> str:
    (tmp_path / "test_third_party.py").write_text(textwrap.dedent(THIRD_PARTY))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rf",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def test_a_driver_from_another_package_that_breaks_the_contract_fails_it(
    tmp_path: Path,
) -> None:
    out = run_contract(tmp_path)
    failed = {line.split("::")[-1].split(" ")[0] for line in out.splitlines() if "FAILED" in line}
    sticky = {name for name in failed if name.startswith("test_")}
    assert "test_removing_from_a_clean_device_changes_nothing" in sticky, out
    assert "test_removing_twice_changes_the_device_once" in sticky, out
    assert "test_after_removal_the_device_is_restored_and_carries_traffic" in sticky, out
    # Rules it keeps still pass: the failures name what is broken, not everything.
    assert "test_facts_name_the_host" not in sticky, out
    assert "must override the harness fixture" in out
