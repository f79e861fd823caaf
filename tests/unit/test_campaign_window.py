"""The sliding window: the next devices start as soon as budgets, concurrency, canaries and
dependencies allow, never at a wave barrier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pitstop.domain.campaign_records import CampaignDevice
from pitstop.domain.campaign_window import (
    WindowDevice,
    blocked,
    campaign_progress,
    next_devices,
    progress,
)
from pitstop.domain.campaigns import DeviceState

S = DeviceState


def dev(
    name: str, state: S = S.PENDING, groups: tuple[str, ...] = (), **kw: object
) -> WindowDevice:
    return WindowDevice(
        name,
        str(kw.get("role", "leaf")),
        groups,
        state,
        tuple(kw.get("after", ())),
        bool(kw.get("canary", False)),
    )  # type: ignore[arg-type]


def test_a_free_slot_is_taken_at_once_while_a_slow_device_runs() -> None:
    # a1 (slow) still runs, b1 finished: b2 starts now, without waiting for a1's wave.
    devices = [
        dev("a1", S.ENTERING, ("a",)),
        dev("b1", S.DONE, ("b",)),
        dev("a2", groups=("a",)),
        dev("b2", groups=("b",)),
    ]
    chosen = next_devices(
        devices, roles_before={}, concurrency=2, slots={"a": 1, "b": 1}, used={"a": 1, "b": 0}
    )
    assert chosen == ["b2"]


def test_concurrency_and_group_slots_are_never_exceeded() -> None:
    devices = [dev(f"d{i}", groups=("g",)) for i in range(5)]
    assert next_devices(devices, roles_before={}, concurrency=10, slots={"g": 2}, used={}) == [
        "d0",
        "d1",
    ]
    assert next_devices(devices, roles_before={}, concurrency=1, slots={"g": 5}, used={}) == ["d0"]
    # A slot held outside the campaign (a device already in maintenance) counts too.
    assert (
        next_devices(devices, roles_before={}, concurrency=10, slots={"g": 2}, used={"g": 2}) == []
    )


def test_canaries_go_alone_and_dependencies_wait_for_done() -> None:
    devices = [dev("c", canary=True), dev("x"), dev("y", after=("x",))]
    assert next_devices(devices, roles_before={}, concurrency=5, slots={}, used={}) == ["c"]
    devices = [dev("c", S.DONE, canary=True), dev("x"), dev("y", after=("x",))]
    assert next_devices(devices, roles_before={}, concurrency=5, slots={}, used={}) == ["x"]


def test_role_order_waits_for_every_earlier_device_to_settle() -> None:
    devices = [dev("l1", S.FAILED), dev("l2", S.EXITING), dev("s1", role="spine")]
    order = {"spine": ["leaf"]}
    assert next_devices(devices, roles_before=order, concurrency=5, slots={}, used={}) == []
    devices[1] = dev("l2", S.DONE)
    assert next_devices(devices, roles_before=order, concurrency=5, slots={}, used={}) == ["s1"]


def test_a_failed_dependency_blocks_its_chain() -> None:
    devices = [dev("a", S.FAILED), dev("b", after=("a",)), dev("c", after=("b",)), dev("d")]
    assert blocked(devices) == ["b", "c"]


def test_progress_and_eta() -> None:
    p = progress(
        [S.DONE, S.DONE, S.ENTERING, S.PENDING, S.FAILED],
        durations_s=[10, 20],
        expected_s=60,
        concurrency=2,
    )
    assert (p.done, p.failed, p.in_flight, p.pending, p.percent) == (2, 1, 1, 1, 60)
    assert p.eta_s == 15.0  # two left at a mean of 15 s, two at a time


def test_campaign_progress_reads_the_definition_and_the_measured_durations() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def stored(position: int, state: S, took_s: float | None = None) -> CampaignDevice:
        started = now - timedelta(seconds=took_s) if took_s is not None else None
        return CampaignDevice(
            position, uuid.uuid4(), f"d{position}", "leaf", (), (), 0, False, state,
            started_at=started, finished_at=now if state is S.DONE else None,
        )  # fmt: skip

    spec = {"concurrency": 2, "expected_durations": {"enter_s": 10, "action_s": 20}}
    # Nothing done yet: the expected 30 s per device, two at a time.
    p = campaign_progress(spec, [stored(0, S.PENDING), stored(1, S.PENDING)], now=now)
    assert (p.total, p.pending, p.percent, p.eta_s) == (2, 2, 0, 30.0)
    # Once a device is done, its measured duration replaces the expectation.
    devices = [stored(0, S.DONE, 12), stored(1, S.ENTERING, 3), stored(2, S.PENDING)]
    p = campaign_progress(spec, devices, now=now)
    assert (p.done, p.in_flight, p.pending, p.percent, p.eta_s) == (1, 1, 1, 33, 12.0)
    # No expected durations at all: a minute per device.
    assert campaign_progress({}, [stored(0, S.PENDING)], now=now).eta_s == 60.0
