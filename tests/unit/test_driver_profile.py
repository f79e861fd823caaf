"""A driver's declared profile decides which checks judge its devices: built-in checks it
does not declare are skipped saying so, its own checks follow in the order it declared, and
a bad declaration is refused when the driver is built, not when a job runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pitstop.domain.health import CHECK_ORDER, CheckResult, CheckStatus, evaluate, overall
from pitstop.domain.metrics import HealthSample, ReportedCheck
from pitstop.domain.parameters import AdvancedParameters
from pitstop.domain.profile import BUILTIN_CHECKS, DriverProfile
from pitstop.drivers.frr.driver import PROFILE as FRR_PROFILE
from pitstop.drivers.simulated import CAPABILITIES as SIMULATED

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
LB = DriverProfile(checks=("cpu_idle", "memory"), own_checks=("backends", "certificates"))


def sample(*checks: ReportedCheck) -> HealthSample:
    return HealthSample(at=T0, cpu_idle_pct=90.0, memory_used_pct=30.0, checks=checks)


def by_name(results: list[CheckResult]) -> dict[str, tuple[CheckStatus, str]]:
    return {r.check: (r.status, r.message) for r in results}


def test_checks_a_driver_does_not_declare_are_skipped_not_passed() -> None:
    results = evaluate(sample(), None, AdvancedParameters(), LB)
    got = by_name(results)
    # Without a profile, a device with no BGP peers would pass "no BGP peers reported".
    assert got["bgp_down_peers"] == (CheckStatus.SKIP, "not reported by this driver")
    assert got["daemons"] == (CheckStatus.SKIP, "not reported by this driver")
    assert got["cpu_idle"][0] is CheckStatus.PASS
    assert got["memory"][0] is CheckStatus.PASS


def test_a_drivers_own_checks_follow_the_built_in_ones_in_its_order() -> None:
    reported = sample(
        ReportedCheck("certificates", "pass", "all certificates valid for 30 days or more"),
        ReportedCheck("backends", "fail", "2 of 4 backends in service", observed=2, threshold=4),
    )
    results = evaluate(reported, None, AdvancedParameters(), LB)
    assert [r.check for r in results] == [*CHECK_ORDER, "backends", "certificates"]
    backends = results[len(CHECK_ORDER)]
    assert (backends.status, backends.observed, backends.threshold) == (CheckStatus.FAIL, 2, 4)
    assert backends.message == "2 of 4 backends in service"
    assert overall(results) is CheckStatus.FAIL


def test_a_declared_check_the_driver_did_not_report_warns() -> None:
    results = by_name(evaluate(sample(), None, AdvancedParameters(), LB))
    assert results["backends"] == (CheckStatus.WARN, "the driver did not report it")


def test_an_unknown_status_warns_instead_of_passing() -> None:
    odd = sample(ReportedCheck("backends", "green", "looks fine"))
    assert by_name(evaluate(odd, None, AdvancedParameters(), LB))["backends"][0] is (
        CheckStatus.WARN
    )


def test_a_router_profile_judges_exactly_as_before() -> None:
    bare = HealthSample(at=T0)
    assert evaluate(bare, None, AdvancedParameters()) == evaluate(
        bare, None, AdvancedParameters(), FRR_PROFILE
    )
    assert FRR_PROFILE.checks == BUILTIN_CHECKS
    assert SIMULATED.profile == FRR_PROFILE  # the simulator stands in for a router


def test_frr_and_the_simulator_keep_their_configuration_check_limit() -> None:
    assert FRR_PROFILE.timeout_s("config_check", 120) == 600
    assert SIMULATED.profile.timeout_s("config_check", 120) == 600
    assert FRR_PROFILE.timeout_s("divert", 120) == 120  # undeclared: the engine's default


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"checks": ("bgp_down_peers", "backends")}, "unknown built-in checks"),
        ({"own_checks": ("memory",)}, "reuse built-in names"),
        ({"own_checks": ("a", "a")}, "distinct"),
        ({"step_timeouts": {"divert": 0}}, "positive"),
    ],
)
def test_a_bad_declaration_is_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        DriverProfile(**kwargs)
