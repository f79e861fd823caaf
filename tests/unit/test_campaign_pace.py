"""A device's pace: its duration over its campaign's median, the median over its last
campaigns; campaigns too small to have a median say nothing."""

from __future__ import annotations

import pytest

from pitstop.domain.campaign_pace import PastRun, paces


def runs(campaign: str, **durations: float) -> list[PastRun]:
    return [PastRun(campaign, name, d) for name, d in durations.items()]


def test_the_pace_is_the_duration_over_the_campaigns_median() -> None:
    got = paces(runs("c1", a=100.0, b=100.0, c=300.0, d=50.0))
    assert got == {"a": 1.0, "b": 1.0, "c": 3.0, "d": 0.5}


def test_it_carries_across_campaigns_of_different_lengths() -> None:
    # An upgrade campaign (minutes) and a drain-only one (seconds): the ratios agree.
    past = runs("upgrade", a=600.0, b=600.0, c=1800.0) + runs("drain", a=20.0, b=20.0, c=60.0)
    assert paces(past) == {"a": 1.0, "b": 1.0, "c": 3.0}


def test_the_median_of_the_last_campaigns_ignores_one_bad_run() -> None:
    # Most recent first: c was stuck once (10x), twice normal; older runs beyond the last
    # three are not looked at.
    past = (
        runs("c4", a=10.0, b=10.0, c=100.0)
        + runs("c3", a=10.0, b=10.0, c=10.0)
        + runs("c2", a=10.0, b=10.0, c=10.0)
        + runs("c1", a=10.0, b=10.0, c=500.0)
    )
    assert paces(past)["c"] == 1.0
    assert paces(past, history=1)["c"] == 10.0


def test_a_campaign_with_too_few_devices_has_no_median_to_compare_with() -> None:
    assert paces(runs("tiny", a=10.0, b=40.0)) == {}


def test_runs_without_a_positive_duration_are_ignored() -> None:
    got = paces(runs("c1", a=100.0, b=100.0, c=200.0, d=0.0, e=-5.0))
    assert set(got) == {"a", "b", "c"}
    assert got["c"] == pytest.approx(2.0)
