"""What a job request may ask for: every numeric parameter is finite and bounded (for a job's
overrides and a fabric's defaults alike), and ``expected_end`` is an aware time in the future.
Each refusal is a 422 problem naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.storage.store import Store


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as api:
        await api.seed_demo()
        yield api


def _job(parameters: str) -> bytes:
    # Raw text: Python's json module reads Infinity, NaN and 1e309 (as infinity), so a client
    # can send them although JSON has no such numbers.
    return (
        '{"type": "maintenance.activate", "device": "leaf1", "reason": "limits",'
        f' "advanced_parameters": {parameters}}}'
    ).encode()


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ('{"drain": {"timeout_s": 1e309}}', "advanced_parameters.drain.timeout_s"),
        ('{"drain": {"timeout_s": Infinity}}', "advanced_parameters.drain.timeout_s"),
        ('{"drain": {"timeout_s": NaN}}', "advanced_parameters.drain.timeout_s"),
        ('{"drain": {"timeout_s": 86401}}', "advanced_parameters.drain.timeout_s"),
        ('{"drain": {"poll_interval_s": 1e-9}}', "advanced_parameters.drain.poll_interval_s"),
        ('{"undrain": {"timeout_s": -1}}', "advanced_parameters.undrain.timeout_s"),
        ('{"sample_interval_s": 1e6}', "advanced_parameters.sample_interval_s"),
        (
            '{"checks": {"bgp_flaps": {"max": 100000000000}}}',
            "advanced_parameters.checks.bgp_flaps.max",
        ),
        (
            '{"checks": {"interface_drops": {"max_per_s": -Infinity}}}',
            "advanced_parameters.checks.interface_drops.max_per_s",
        ),
    ],
)
async def test_an_unbounded_parameter_is_refused_naming_its_field(
    api: Api, parameters: str, field: str
) -> None:
    r = await api.post(
        "/api/v1/jobs", content=_job(parameters), headers={"Content-Type": "application/json"}
    )
    body = problem(r, 422, "VALIDATION_FAILED")
    assert fields(body) == [field]
    jobs = await api.ok("GET", "/api/v1/jobs")
    assert jobs["items"] == []  # nothing was queued


@SQLITE_ONLY
async def test_a_fabric_default_goes_through_the_same_bounds(api: Api) -> None:
    r = await api.patch(
        "/api/v1/fabrics/dc1",
        content=b'{"parameters": {"drain": {"timeout_s": Infinity}}}',
        headers={"Content-Type": "application/json"},
    )
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "parameters.drain.timeout_s" in r.text, body
    assert (await api.ok("GET", "/api/v1/fabrics/dc1"))["parameters"] == {}


@SQLITE_ONLY
@pytest.mark.parametrize("kind", ["past", "naive"])
async def test_an_expected_end_in_the_past_or_without_a_zone_is_refused(
    api: Api, kind: str
) -> None:
    now = api.clock()
    when = now - timedelta(minutes=1) if kind == "past" else (now + timedelta(hours=1))
    text = when.isoformat() if kind == "past" else when.replace(tzinfo=None).isoformat()
    r = await api.post(
        "/api/v1/jobs",
        json={
            "type": "maintenance.activate",
            "device": "leaf1",
            "reason": "replace optics",
            "expected_end": text,
        },
    )
    body = problem(r, 422, "VALIDATION_FAILED")
    assert fields(body) == ["expected_end"]
    expected = "must be in the future" if kind == "past" else "needs a time zone"
    assert expected in body["errors"][0]["message"], body
    assert (await api.ok("GET", "/api/v1/jobs"))["items"] == []


@SQLITE_ONLY
async def test_an_expected_end_in_the_future_with_a_zone_is_kept(api: Api) -> None:
    end = (api.clock() + timedelta(hours=2)).isoformat()
    job = await api.ok(
        "POST",
        "/api/v1/jobs",
        201,
        json={"type": "healthcheck", "device": "leaf1", "expected_end": end},
    )
    assert job["status"] == "queued"
