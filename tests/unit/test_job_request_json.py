"""A job request to its stored JSON and back, and the shape older jobs were stored in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pitstop.domain.job_requests import JobRequest
from pitstop.domain.parameters import resolve
from pitstop.domain.roles import Via


def test_a_request_reads_back_as_it_was_written() -> None:
    request = JobRequest(
        reason="replace optics",
        ticket="CHG-1",
        expected_end=datetime(2026, 12, 1, 18, 0, tzinfo=UTC),
        via=Via.WEB,
        force_reason="emergency",
        overrides={"drain": {"timeout_s": 30}},
        effective=resolve({"drain": {"max_residual_pps": 50}}, {"drain": {"timeout_s": 30}}),
    )
    assert JobRequest.from_json(request.to_json()) == request
    assert request.forced


def test_the_stored_shape_of_older_jobs_reads_without_effective_parameters() -> None:
    old = {
        "advanced_parameters": {"checks": {"cpu_idle": {"min_pct": 20}}},
        "reason": "r",
        "ticket": None,
        "expected_end": "2026-12-01T18:00:00",
        "via": "cli",
    }
    request = JobRequest.from_json(old)
    assert request.effective is None
    assert request.overrides == {"checks": {"cpu_idle": {"min_pct": 20}}}
    assert request.via is Via.CLI
    assert not request.forced
    # Stored without an offset means UTC, as the repositories store times.
    assert request.expected_end == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def test_an_expected_end_with_an_offset_reads_as_the_same_instant_in_utc() -> None:
    end = datetime(2026, 12, 1, 20, 0, tzinfo=timezone(timedelta(hours=2)))
    read = JobRequest.from_json(JobRequest(expected_end=end).to_json()).expected_end
    assert read == end
    assert read is not None and read.tzinfo is UTC


def test_nothing_stored_reads_as_an_empty_request() -> None:
    assert JobRequest.from_json(None) == JobRequest()
