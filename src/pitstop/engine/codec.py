"""Driver samples to JSON and back, for step outputs that a later step (or a worker that takes
the job over) reads again."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pitstop.domain.metrics import (
    Alarm,
    BgpPeer,
    HealthSample,
    InterfaceCounters,
    InterfaceRates,
    ReportedCheck,
    Snapshot,
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def health_to_json(sample: HealthSample) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(dataclasses.asdict(sample))
    return out


def health_from_json(data: dict[str, Any]) -> HealthSample:
    routes = data.get("routes")
    return HealthSample(
        at=datetime.fromisoformat(data["at"]),
        bgp_peers=tuple(BgpPeer(**p) for p in data.get("bgp_peers", ())),
        interfaces=tuple(InterfaceCounters(**i) for i in data.get("interfaces", ())),
        cpu_idle_pct=data.get("cpu_idle_pct"),
        memory_used_pct=data.get("memory_used_pct"),
        alarms=tuple(Alarm(**a) for a in data.get("alarms", ())),
        daemons=dict(data.get("daemons", {})),
        routes=tuple(routes) if routes is not None else None,
        extra=dict(data.get("extra", {})),
        checks=tuple(ReportedCheck(**c) for c in data.get("checks", ())),
    )


def rates_to_json(rates: tuple[InterfaceRates, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rates]


def rates_from_json(data: list[dict[str, Any]]) -> tuple[InterfaceRates, ...]:
    return tuple(InterfaceRates(**r) for r in data)


def snapshot_to_json(snap: Snapshot) -> dict[str, Any]:
    return {
        "at": snap.at.isoformat(),
        "config": snap.config,
        "health": health_to_json(snap.health),
        "rates": rates_to_json(snap.rates),
    }


def snapshot_from_json(data: dict[str, Any]) -> Snapshot:
    return Snapshot(
        at=datetime.fromisoformat(data["at"]),
        config=data["config"],
        health=health_from_json(data["health"]),
        rates=rates_from_json(data.get("rates", [])),
    )
