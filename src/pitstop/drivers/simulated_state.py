"""The simulated fleet's state: what the devices themselves remember, outside pitstop.

This module owns storing each simulated device's state (diverted or not, since when, its
configuration, its counters, injected faults) and its call log, and changing them atomically.

A real device keeps its configuration when the orchestrator crashes; a simulated one must too,
or crash tests prove nothing. With a ``state_dir`` every device is one JSON file
``<state_dir>/<device_id>.json`` that outlives the process: each change reads, modifies and
writes it under an exclusive ``fcntl.flock`` on ``<device_id>.lock`` (so two processes, e.g. a
restarted server and the test checking it, never interleave), and writes it to a temporary
file first and ``os.replace``s it into place (so a SIGKILL mid-write leaves the old state or
the new one, never half of each). The device change and its call-log entry are one write, so a
test that counts ``apply_maintenance`` entries with ``changed: true`` counts real changes.
No fsync: the file must survive the process, not the machine, and fsync would make every
health poll of a thousand-device benchmark wait for the disk.

Without a ``state_dir`` the state is a dict held by the ``SimulatedFleet`` instance (never by
the class or the module), so separate fleets in one process are separate worlds.

The critical section (``update``) is synchronous and holds no ``await``: a coroutine cannot be
suspended while it holds the lock, so two drivers on one event loop can never deadlock on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pitstop.domain.errors import DriverError, FieldError, ValidationFailed
from pitstop.drivers.simulated_model import FAULTS

T = TypeVar("T")

MAX_CALLS = 1000  # call-log entries kept per device; the oldest go first
SCHEMA = 1

DeviceKey = uuid.UUID | str


def blank_state(device_id: str) -> dict[str, Any]:
    """The state of a device the simulator has not touched yet."""
    return {
        "schema": SCHEMA,
        "device_id": device_id,
        "hostname": None,
        "diverted": False,
        "method": None,  # the diversion method in effect
        "diverted_at": None,  # ISO 8601 instants, from the driver's clock
        "restored_at": None,
        "ramp_from": 1.0,  # traffic level when the diversion was last applied or removed
        "config": None,  # generated on first use, then only changed by diversions
        "born_at": None,  # when the simulator first saw the device: peers' uptime counts on
        "observed_at": None,  # when the counters below were last brought up to date
        "packets": 0.0,
        "errors": 0.0,
        "faults": [],  # injected faults; label faults are not stored, they live in the labels
        "calls": [],  # {"op", "at", "changed"[, "method", "error"]}, oldest first
    }


def _key(device_id: DeviceKey) -> str:
    # Canonical UUID text only: it is also a file name, so nothing like "../x" gets through.
    try:
        return str(device_id if isinstance(device_id, uuid.UUID) else uuid.UUID(device_id))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed(
            f"{device_id!r} is not a device id (a UUID)",
            [FieldError("device_id", "must be a UUID")],
        ) from None


def _check_fault(fault: str) -> None:
    if fault not in FAULTS:
        raise ValidationFailed(
            f"unknown fault {fault!r}; known faults: {', '.join(sorted(FAULTS))}",
            [FieldError("fault", f"must be one of {', '.join(sorted(FAULTS))}")],
        )


def log_call(
    state: dict[str, Any], max_calls: int, op: str, at: str, changed: bool, **more: Any
) -> None:
    """Append to the state's call log, keeping the newest ``max_calls`` entries."""
    calls: list[dict[str, Any]] = state["calls"]
    calls.append({"op": op, "at": at, "changed": changed, **more})
    if len(calls) > max_calls:
        del calls[: len(calls) - max_calls]


class SimulatedFleet:
    """The state of every simulated device, in memory or in ``state_dir``."""

    def __init__(self, *, state_dir: Path | str | None = None, max_calls: int = MAX_CALLS):
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        self.max_calls = max_calls
        self._dir = Path(state_dir) if state_dir is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._memory: dict[str, dict[str, Any]] = {}

    @property
    def state_dir(self) -> Path | None:
        return self._dir

    # --- the transaction ------------------------------------------------------------------

    def update(self, device_id: DeviceKey, change: Callable[[dict[str, Any]], T]) -> T:
        """Run ``change`` on the device's state and keep what it did, atomically: if it
        raises, nothing is kept. Returns what ``change`` returns."""
        key = _key(device_id)
        if self._dir is None:
            live = self._memory.get(key) or blank_state(key)
            # A copy of the mutable parts, so a failing change leaves the live state alone,
            # as in the file store (entries themselves are never mutated once logged).
            state = {**live, "calls": list(live["calls"]), "faults": list(live["faults"])}
            result = change(state)
            self._memory[key] = state
            return result
        with open(self._dir / f"{key}.lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
            raw, state = self._read_file(key)
            result = change(state)
            text = json.dumps(state, separators=(",", ":"))
            if text != raw:
                tmp = self._dir / f".{key}.json.tmp"
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self._dir / f"{key}.json")
            return result

    def _read_file(self, key: str) -> tuple[str | None, dict[str, Any]]:
        assert self._dir is not None
        path = self._dir / f"{key}.json"
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, blank_state(key)
        except OSError as exc:
            raise DriverError(f"simulated device {key}: cannot read {path}: {exc}") from exc
        try:
            state = json.loads(raw)
        except ValueError as exc:
            raise DriverError(f"simulated device {key}: {path} is not valid JSON: {exc}") from exc
        if not isinstance(state, dict) or state.get("schema") != SCHEMA:
            raise DriverError(f"simulated device {key}: {path} is not a state file")
        return raw, {**blank_state(key), **state}

    def read(self, device_id: DeviceKey) -> dict[str, Any]:
        """A copy of the device's state (the blank state if it was never touched). Needs no
        lock: files are only ever replaced whole."""
        key = _key(device_id)
        if self._dir is None:
            live = self._memory.get(key) or blank_state(key)
            return {**live, "calls": list(live["calls"]), "faults": list(live["faults"])}
        return self._read_file(key)[1]

    # --- what tests and the admin API use -----------------------------------------------------

    def inject(self, device_id: DeviceKey, fault: str) -> None:
        """Turn ``fault`` on for the device until ``clear``ed (see ``FAULTS``)."""
        _check_fault(fault)

        def add(state: dict[str, Any]) -> None:
            if fault not in state["faults"]:
                state["faults"] = sorted([*state["faults"], fault])

        self.update(device_id, add)

    def clear(self, device_id: DeviceKey, fault: str | None = None) -> None:
        """Turn an injected fault off, or all of them. Faults set by the device's
        ``sim.fault`` label stay: they belong to the inventory, not to the simulator."""
        if fault is not None:
            _check_fault(fault)

        def remove(state: dict[str, Any]) -> None:
            state["faults"] = [f for f in state["faults"] if fault is not None and f != fault]

        self.update(device_id, remove)

    def faults(self, device_id: DeviceKey) -> frozenset[str]:
        """The injected faults of the device (not those from its labels)."""
        return frozenset(self.read(device_id)["faults"])

    def edit_config(self, device_id: DeviceKey, change: Callable[[str], str]) -> None:
        """Change the device's configuration out of band, as a person or a maintenance
        action's command would. The device must have been read once (its configuration is
        generated on first use)."""

        def edit(state: dict[str, Any]) -> None:
            if state["config"] is None:
                raise ValueError("the simulated device has no configuration yet: read it first")
            state["config"] = change(str(state["config"]))

        self.update(device_id, edit)

    def calls(self, device_id: DeviceKey) -> list[dict[str, Any]]:
        """The device's call log, oldest first: ``{"op", "at", "changed"}`` per call to
        apply_maintenance, remove_maintenance, backup_config, restore_config, health and
        traffic, plus ``method`` for diversions and ``error`` (a code) for calls the device
        refused."""
        return [dict(c) for c in self.read(device_id)["calls"]]

    def state(self, device_id: DeviceKey) -> dict[str, Any]:
        """The device's whole state (see ``blank_state``), as a copy."""
        return self.read(device_id)

    def devices(self) -> list[str]:
        """Ids of the devices that have state, sorted."""
        if self._dir is None:
            return sorted(self._memory)
        return sorted(p.stem for p in self._dir.glob("*.json") if not p.name.startswith("."))
