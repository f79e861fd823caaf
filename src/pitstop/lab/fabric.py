"""Building and removing a lab fabric on this machine, and the state file that makes removal
exact.

``up`` records every namespace and FRR directory in the state file *before* it creates it, so
that ``down`` removes exactly what the lab created even after an ``up`` that failed half way,
and never anything else: it stops only processes running inside the lab's own namespaces,
deletes only the directories it recorded, and leaves the default ``/var/run/frr`` and every
other FRR instance alone.

Each router is its own FRR instance: network namespace and pathspace share one name, and
Debian's ``frrinit.sh start <pathspace>`` (run inside the namespace) starts watchfrr, which
starts zebra, bgpd and staticd as user ``frr`` with ``/etc/frr/<pathspace>/`` for the
configuration and ``/var/run/frr/<pathspace>/`` for vty sockets, pid files and the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pitstop.lab import host
from pitstop.lab.host import LabError
from pitstop.lab.topology import DAEMONS_FILE, PREFIX, Topology, frr_config, plan

STATE_DIR = Path("/run/psl-lab")
ETC_FRR = Path("/etc/frr")
RUN_FRR = Path("/var/run/frr")
CONVERGE_TIMEOUT_S = 90.0

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class LabState:
    """What one lab created, as written to its state file."""

    fabric: str
    spines: int
    leaves: int
    hosts_per_leaf: int
    namespaces: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    pathspaces: list[str] = field(default_factory=list)
    ready: bool = False

    def topology(self) -> Topology:
        return plan(
            fabric=self.fabric,
            spines=self.spines,
            leaves=self.leaves,
            hosts_per_leaf=self.hosts_per_leaf,
        )


def state_path(fabric: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / f"{fabric}.json"


def load_state(fabric: str, state_dir: Path = STATE_DIR) -> LabState | None:
    path = state_path(fabric, state_dir)
    if not path.exists():
        return None
    return LabState(**json.loads(path.read_text()))


def _save(state: LabState, state_dir: Path) -> None:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_path(state.fabric, state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, path)


def up(
    *,
    fabric: str = "lab",
    spines: int = 2,
    leaves: int = 4,
    hosts_per_leaf: int = 1,
    state_dir: Path = STATE_DIR,
    say: Say = _quiet,
) -> LabState:
    """Build the fabric and wait until BGP has converged with ECMP over every spine. On any
    failure, what was created so far is removed again before the error is raised."""
    try:
        topo = plan(fabric=fabric, spines=spines, leaves=leaves, hosts_per_leaf=hosts_per_leaf)
    except ValueError as exc:
        raise LabError(str(exc), code="LAB_BAD_ARGUMENT") from exc
    host.preflight()
    if load_state(fabric, state_dir) is not None:
        raise LabError(
            f"a lab named {fabric!r} is already up (state in {state_path(fabric, state_dir)}); "
            f"run `pitstop lab down --fabric {fabric}` first",
            code="LAB_EXISTS",
        )
    taken = sorted(set(topo.namespaces()) & host.namespaces())
    taken += [ns for ns in topo.namespaces() if (ETC_FRR / ns).exists() or (RUN_FRR / ns).exists()]
    if taken:
        raise LabError(
            f"names the lab would create already exist and are not its own: "
            f"{', '.join(sorted(set(taken)))}; choose another --fabric",
            code="LAB_NAME_TAKEN",
        )
    state = LabState(fabric, spines, leaves, hosts_per_leaf)
    _save(state, state_dir)
    try:
        _build(topo, state, state_dir, say)
        say("waiting for BGP to converge")
        wait_converged(topo)
    except BaseException:
        with contextlib.suppress(Exception):
            down(fabric=fabric, state_dir=state_dir)
        raise
    state.ready = True
    _save(state, state_dir)
    return state


def _build(topo: Topology, state: LabState, state_dir: Path, say: Say) -> None:
    say(f"creating {len(topo.namespaces())} network namespaces")
    routers = {r.netns for r in topo.routers}
    for ns in topo.namespaces():
        state.namespaces.append(ns)
        _save(state, state_dir)
        host.run(["ip", "netns", "add", ns])
        host.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        if ns in routers:
            for key, value in (
                ("net.ipv4.ip_forward", "1"),
                # Hash on ports too, so the flows of one host pair spread over all spines.
                ("net.ipv4.fib_multipath_hash_policy", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
            ):
                host.in_ns(ns, ["sysctl", "-q", "-w", f"{key}={value}"])
    for ns, addr in topo.loopbacks.items():
        host.run(["ip", "-n", ns, "addr", "add", addr, "dev", "lo"])
    say(f"wiring {len(topo.links)} links")
    for link in topo.links:
        host.run(
            ["ip", "link", "add", link.a_if, "netns", link.a_ns, "type", "veth",
             "peer", "name", link.b_if, "netns", link.b_ns]
        )  # fmt: skip
        for ns, ifname, addr in ((link.a_ns, link.a_if, link.a_addr),
                                 (link.b_ns, link.b_if, link.b_addr)):  # fmt: skip
            host.run(["ip", "-n", ns, "addr", "add", addr, "dev", ifname])
            host.run(["ip", "-n", ns, "link", "set", ifname, "up"])
    for h in topo.hosts:
        host.run(["ip", "-n", h.netns, "route", "add", "default", "via", h.gateway])
    say(f"starting {len(topo.routers)} FRR instances")
    # On a machine where FRR's own service never ran, the parent of the pathspaces may be
    # missing; it is created as the package would, and left in place by ``down``.
    if not RUN_FRR.exists():
        RUN_FRR.mkdir(mode=0o755, parents=True)
        host.chown_frr(RUN_FRR)
    for r in topo.routers:
        etc, run_dir = ETC_FRR / r.pathspace, RUN_FRR / r.pathspace
        state.directories += [str(etc), str(run_dir)]
        state.pathspaces.append(r.pathspace)
        _save(state, state_dir)
        for d in (etc, run_dir):
            d.mkdir(mode=0o750)
            host.chown_frr(d)
        for name, text in (
            ("daemons", DAEMONS_FILE),
            ("frr.conf", frr_config(r)),
            ("vtysh.conf", "service integrated-vtysh-config\n"),
        ):
            (etc / name).write_text(text)
            (etc / name).chmod(0o640)
            host.chown_frr(etc / name)
        host.in_ns(r.netns, [str(host.FRRINIT), "start", r.pathspace], timeout=60)


def vtysh_json(pathspace: str, command: str) -> Any:
    out = host.run(["vtysh", "-N", pathspace, "-c", command], timeout=20)
    return json.loads(out or "{}")


def wait_converged(
    topo: Topology, timeout: float = CONVERGE_TIMEOUT_S, *, ecmp: bool = True
) -> None:
    """Every session Established, and (with ``ecmp``) every leaf reaching every other leaf's
    hosts over all spines, or ``LabError`` saying what was still missing."""
    deadline = time.monotonic() + timeout
    spines = len(topo.spines)
    missing = "nothing checked yet"
    while time.monotonic() < deadline:
        missing = _not_converged(topo, spines if ecmp else 1)
        if not missing:
            return
        time.sleep(0.5)
    raise LabError(f"BGP did not converge within {timeout:g} s: {missing}", code="LAB_TIMEOUT")


def _not_converged(topo: Topology, spines: int) -> str:
    for r in topo.routers:
        try:
            summary = vtysh_json(r.pathspace, "show bgp ipv4 unicast summary json")
        except (LabError, ValueError) as exc:
            return f"{r.name}: {exc}"
        peers = summary.get("peers", {})
        down = [p for p, v in peers.items() if v.get("state") != "Established"]
        if len(peers) != len(r.neighbors) or down:
            return f"{r.name}: sessions not established ({', '.join(down) or 'none yet'})"
    for leaf in topo.leaves:
        routes = vtysh_json(leaf.pathspace, "show ip route bgp json")
        for other in topo.leaves:
            if other is leaf:
                continue
            for prefix in other.networks:
                entries = routes.get(prefix, [])
                hops = [h for e in entries if e.get("selected") for h in e.get("nexthops", [])]
                active = [h for h in hops if h.get("fib")]
                if len(active) < spines:
                    return f"{leaf.name}: {prefix} over {len(active)} of {spines} spines"
    return ""


@contextlib.contextmanager
def running(
    *,
    fabric: str,
    spines: int = 2,
    leaves: int = 2,
    hosts_per_leaf: int = 1,
    state_dir: Path = STATE_DIR,
) -> Iterator[Topology]:
    """A lab for the length of a ``with`` block (tests, benchmarks): up, then always down."""
    state = up(
        fabric=fabric,
        spines=spines,
        leaves=leaves,
        hosts_per_leaf=hosts_per_leaf,
        state_dir=state_dir,
    )
    try:
        yield state.topology()
    finally:
        down(fabric=fabric, state_dir=state_dir)


def down(*, fabric: str = "lab", state_dir: Path = STATE_DIR, say: Say = _quiet) -> LabState:
    """Remove exactly what ``up`` recorded for ``fabric``: its FRR instances, directories and
    namespaces, then the state file. ``LabError`` when no such lab is recorded."""
    host.preflight()
    state = load_state(fabric, state_dir)
    if state is None:
        raise LabError(
            f"no lab named {fabric!r} is up (no state file {state_path(fabric, state_dir)})",
            code="LAB_NOT_FOUND",
        )
    existing = host.namespaces()
    say(f"stopping {len(state.pathspaces)} FRR instances")
    # All instances stop at once: each frrinit waits for its daemons to exit.
    stopping = [
        subprocess.Popen(
            ["ip", "netns", "exec", ps, str(host.FRRINIT), "stop", ps],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for ps in state.pathspaces
        if ps in existing and (RUN_FRR / ps).is_dir()
    ]
    for proc in stopping:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    # Whatever still runs inside the lab's namespaces (a daemon frrinit could not stop, a
    # traffic generator) is the lab's own: nothing else can be in them.
    for ns in state.namespaces:
        if ns in existing:
            for pid in host.ns_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
    say(f"deleting {len(state.namespaces)} namespaces and {len(state.directories)} directories")
    for d in state.directories:
        path = Path(d)
        # Only directories named by the lab's own prefix, as a last guard for a damaged file.
        if path.name.startswith(PREFIX) and path.parent in (ETC_FRR, RUN_FRR):
            shutil.rmtree(path, ignore_errors=True)
    for ns in state.namespaces:
        if ns.startswith(PREFIX) and ns in existing:
            host.run(["ip", "netns", "del", ns], check=False)
    state_path(fabric, state_dir).unlink(missing_ok=True)
    return state
