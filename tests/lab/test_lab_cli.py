"""``pitstop lab up`` and ``pitstop lab down`` as an operator runs them, against a real
``pitstop serve``: the routers are registered as devices, a second ``up`` refuses, ``down``
removes exactly what the lab created, and a lab brought up again finds its devices kept."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from cli_server import ServerProcess, child_env, new_token, sqlite_url
from lab_support import require_lab


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    require_lab()
    home = tmp_path_factory.mktemp("lab-cli")
    token = new_token()
    env = child_env(
        home, PITSTOP_DATABASE_URL=sqlite_url(home / "lab.db"), PITSTOP_BOOTSTRAP_TOKEN=token
    )
    with ServerProcess("serve", env=env, log=home / "server.log") as proc:
        yield child_env(home, PITSTOP_URL=proc.url, PITSTOP_TOKEN=token, COLUMNS="200")


def pitstop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pitstop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_lab_up_registers_the_routers_and_down_removes_only_its_own(
    server: dict[str, str],
) -> None:
    name = "k" + "".join(random.choices(string.ascii_lowercase, k=5))
    # Same prefix and fabric, but not the lab's: ``down`` must leave it alone.
    foreign = f"psl-{name}-spine9"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        up = pitstop(server, "lab", "up", "--fabric", name, "--spines", "1", "--leaves", "2",
                     "-o", "json")  # fmt: skip
        assert up.returncode == 0, up.stderr
        summary: dict[str, Any] = json.loads(up.stdout)
        assert sorted(summary["registered"]) == [
            f"{name}/{d}" for d in ("leaf1", "leaf2", "spine1")
        ]
        ours = {f"psl-{name}-{n}" for n in ("spine1", "leaf1", "leaf2", "host1", "host2")}
        assert ours <= namespaces()

        listed = pitstop(server, "device", "list", "--fabric", name, "-o", "json")
        assert listed.returncode == 0, listed.stderr
        devices = {d["name"]: d for d in json.loads(listed.stdout)}
        assert set(devices) == {"spine1", "leaf1", "leaf2"}
        assert {d["driver"] for d in devices.values()} == {"frr"}
        assert {d["status"] for d in devices.values()} == {"activated"}

        again = pitstop(server, "lab", "up", "--fabric", name)
        assert again.returncode == 1
        assert again.stderr.startswith("LAB_EXISTS: ")

        down = pitstop(server, "lab", "down", "--fabric", name)
        assert down.returncode == 0, down.stderr
        assert not ours & namespaces()
        assert foreign in namespaces()
        assert not [p for p in os.listdir("/etc/frr") if p.startswith(f"psl-{name}-")]
        assert not [p for p in os.listdir("/var/run/frr") if p.startswith(f"psl-{name}-")]

        gone = pitstop(server, "lab", "down", "--fabric", name)
        assert gone.returncode == 1 and gone.stderr.startswith("LAB_NOT_FOUND: ")

        # Up again: the devices registered the first time are kept, none is added twice.
        reup = pitstop(server, "lab", "up", "--fabric", name, "--spines", "1", "--leaves", "2",
                       "-o", "json")  # fmt: skip
        assert reup.returncode == 0, reup.stderr
        assert json.loads(reup.stdout)["already_registered"] is True
    finally:
        pitstop(server, "lab", "down", "--fabric", name)
        subprocess.run(["ip", "netns", "del", foreign], check=False)
