"""Health checks: each check's pass, fail, warn and skip paths, the messages that name what is at
fault, thresholds at their boundary, interface rates over a window, and the fixed order."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitstop.domain.health import (
    CHECK_ORDER,
    CheckResult,
    CheckStatus,
    evaluate,
    interface_rates,
    overall,
)
from pitstop.domain.metrics import Alarm, BgpPeer, HealthSample, InterfaceCounters
from pitstop.domain.parameters import AdvancedParameters, resolve

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
P, W, F, S = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP


def params(**checks: dict[str, Any]) -> AdvancedParameters:
    # Laid over the built-in defaults here: ``resolve`` alone would lose a check's default
    # threshold when an override names only ``enabled``.
    return resolve(AdvancedParameters().model_dump(), {"checks": checks})


def healthy(at: datetime = T0, **changes: Any) -> HealthSample:
    fields: dict[str, Any] = {
        "at": at,
        "bgp_peers": (BgpPeer("10.0.0.1", "Established"), BgpPeer("10.0.0.2", "Established")),
        "interfaces": (InterfaceCounters("eth0", True), InterfaceCounters("eth1", True)),
        "cpu_idle_pct": 90.0,
        "memory_used_pct": 40.0,
        "daemons": {"bgpd": True, "zebra": True},
    }
    fields.update(changes)
    return HealthSample(**fields)


def result(
    check: str,
    first: HealthSample,
    second: HealthSample | None = None,
    p: AdvancedParameters | None = None,
) -> CheckResult:
    found = [r for r in evaluate(first, second, p or AdvancedParameters()) if r.check == check]
    assert len(found) == 1
    return found[0]


def test_a_healthy_device_passes_every_check_in_order() -> None:
    results = evaluate(healthy(), healthy(T0 + timedelta(seconds=5)), AdvancedParameters())
    assert [r.check for r in results] == list(CHECK_ORDER)
    assert [r.status for r in results] == [P] * len(CHECK_ORDER)
    assert overall(results) is P


# --- BGP down peers ------------------------------------------------------------------------


def test_down_peers_fail_naming_each_with_its_state() -> None:
    sample = healthy(
        bgp_peers=(
            BgpPeer("10.0.0.1", "Idle"),
            BgpPeer("10.0.0.3", "Established"),
            BgpPeer("10.0.0.5", "Active"),
        )
    )
    r = result("bgp_down_peers", sample)
    assert r.status is F
    assert r.message == "2 BGP peers down: 10.0.0.1 (Idle), 10.0.0.5 (Active)"
    assert (r.observed, r.threshold) == (2, 0)


def test_an_admin_down_peer_counts_as_down_and_says_so() -> None:
    sample = healthy(bgp_peers=(BgpPeer("10.0.0.9", "Idle", admin_down=True),))
    r = result("bgp_down_peers", sample)
    assert r.status is F
    assert "10.0.0.9 (admin down)" in r.message


def test_an_admin_down_peer_counts_even_when_it_claims_established() -> None:
    sample = healthy(bgp_peers=(BgpPeer("10.0.0.9", "Established", admin_down=True),))
    assert result("bgp_down_peers", sample).status is F


def test_peer_state_is_matched_without_regard_to_case() -> None:
    sample = healthy(bgp_peers=(BgpPeer("10.0.0.1", "ESTABLISHED"),))
    assert result("bgp_down_peers", sample).status is P


@pytest.mark.parametrize(("down", "limit", "status"), [(1, 1, P), (2, 1, F), (0, 0, P), (1, 0, F)])
def test_down_peers_at_the_limit_pass(down: int, limit: int, status: CheckStatus) -> None:
    peers = tuple(BgpPeer(f"10.0.1.{i}", "Idle") for i in range(down))
    sample = healthy(bgp_peers=(BgpPeer("10.0.0.1", "Established"), *peers))
    r = result("bgp_down_peers", sample, p=params(bgp_down_peers={"max": limit}))
    assert r.status is status
    assert r.observed == down


def test_down_peers_within_the_limit_are_still_named() -> None:
    sample = healthy(bgp_peers=(BgpPeer("10.0.0.7", "Connect"),))
    r = result("bgp_down_peers", sample, p=params(bgp_down_peers={"max": 1}))
    assert r.status is P
    assert "10.0.0.7 (Connect)" in r.message


def test_the_latest_sample_decides_absolute_checks() -> None:
    down = healthy(bgp_peers=(BgpPeer("10.0.0.1", "Idle"),))
    up = healthy(T0 + timedelta(seconds=5), bgp_peers=(BgpPeer("10.0.0.1", "Established"),))
    assert result("bgp_down_peers", down, up).status is P
    assert result("bgp_down_peers", up, replace(down, at=up.at + timedelta(1))).status is F


# --- BGP flaps -----------------------------------------------------------------------------


def test_flapping_peers_fail_naming_each_with_its_drops() -> None:
    sample = healthy(
        bgp_peers=(
            BgpPeer("10.0.0.1", "Established", dropped=5),
            BgpPeer("10.0.0.2", "Established", dropped=4),
            BgpPeer("10.0.0.3", "Established", dropped=9),
        )
    )
    r = result("bgp_flaps", sample)
    assert r.status is F
    assert "10.0.0.3 (9 drops)" in r.message
    assert "10.0.0.1 (5 drops)" in r.message
    assert "10.0.0.2" not in r.message  # 4 is the default maximum, which is allowed
    assert (r.observed, r.threshold) == (9, 4)


def test_flaps_at_the_limit_pass() -> None:
    sample = healthy(bgp_peers=(BgpPeer("10.0.0.1", "Established", dropped=4),))
    r = result("bgp_flaps", sample)
    assert r.status is P
    assert r.observed == 4


# --- CPU and memory ------------------------------------------------------------------------


@pytest.mark.parametrize(("idle", "status"), [(60.0, P), (59.9, F), (100.0, P), (0.0, F)])
def test_cpu_idle_at_the_minimum_passes(idle: float, status: CheckStatus) -> None:
    r = result("cpu_idle", healthy(cpu_idle_pct=idle))
    assert r.status is status
    assert (r.observed, r.threshold) == (idle, 60)


def test_low_cpu_idle_says_what_it_saw() -> None:
    r = result("cpu_idle", healthy(cpu_idle_pct=45.0))
    assert r.message == "CPU idle 45 % is below the minimum of 60 %"


@pytest.mark.parametrize(("used", "status"), [(80.0, P), (80.5, F), (0.0, P)])
def test_memory_at_the_maximum_passes(used: float, status: CheckStatus) -> None:
    r = result("memory", healthy(memory_used_pct=used))
    assert r.status is status
    assert "%" in r.message


@pytest.mark.parametrize(
    ("check", "changes", "text"),
    [
        ("cpu_idle", {"cpu_idle_pct": None}, "the driver does not report CPU idle"),
        ("memory", {"memory_used_pct": None}, "the driver does not report memory use"),
    ],
)
def test_unreported_cpu_or_memory_warns(check: str, changes: dict[str, Any], text: str) -> None:
    r = result(check, healthy(**changes))
    assert r.status is W
    assert r.message == text
    assert r.observed is None


# --- Interface rates -----------------------------------------------------------------------


def test_interface_rates_are_deltas_per_second() -> None:
    first = healthy(interfaces=(InterfaceCounters("eth0", True, rx_errors=10, tx_errors=5),))
    second = healthy(
        T0 + timedelta(seconds=4),
        interfaces=(
            InterfaceCounters(
                "eth0", True, rx_errors=20, tx_errors=7, rx_drops=8, carrier_transitions=2
            ),
        ),
    )
    [rates] = interface_rates(first, second)
    assert rates.name == "eth0"
    assert rates.errors_per_s == pytest.approx(3.0)  # (10 + 2) / 4
    assert rates.drops_per_s == pytest.approx(2.0)
    assert rates.carrier_transitions_per_s == pytest.approx(0.5)


def test_a_counter_reset_counts_as_zero_never_negative() -> None:
    first = healthy(
        interfaces=(InterfaceCounters("eth0", True, rx_errors=1000, tx_errors=0, rx_drops=500),),
    )
    second = healthy(
        T0 + timedelta(seconds=2),
        interfaces=(InterfaceCounters("eth0", True, rx_errors=3, tx_errors=4, rx_drops=0),),
    )
    [rates] = interface_rates(first, second)
    assert rates.errors_per_s == pytest.approx(2.0)  # rx reset counts 0; tx grew by 4
    assert rates.drops_per_s == 0.0


def test_only_interfaces_in_both_samples_get_rates() -> None:
    first = healthy(interfaces=(InterfaceCounters("eth0", True), InterfaceCounters("old", True)))
    second = healthy(
        T0 + timedelta(seconds=1),
        interfaces=(InterfaceCounters("new", True), InterfaceCounters("eth0", True)),
    )
    assert [r.name for r in interface_rates(first, second)] == ["eth0"]


@pytest.mark.parametrize("seconds", [0, -5])
def test_rates_need_the_second_sample_later(seconds: int) -> None:
    with pytest.raises(ValueError, match="later"):
        interface_rates(healthy(), healthy(T0 + timedelta(seconds=seconds)))


def _with_errors(eth0: int, eth1: int, *, drops: bool = False) -> HealthSample:
    key = "rx_drops" if drops else "rx_errors"
    return healthy(
        T0 + timedelta(seconds=10),
        interfaces=(
            InterfaceCounters("eth0", True, **{key: eth0}),
            InterfaceCounters("eth1", True, **{key: eth1}),
        ),
    )


def test_interface_errors_fail_naming_each_interface_with_its_rate() -> None:
    r = result("interface_errors", healthy(), _with_errors(25, 5))
    assert r.status is F
    assert r.message == "1 interface over 1 errors/s: eth0 (2.5/s)"
    assert (r.observed, r.threshold) == (2.5, 1.0)


def test_interface_errors_at_the_limit_pass() -> None:
    r = result("interface_errors", healthy(), _with_errors(10, 10))
    assert r.status is P
    assert r.observed == 1.0


def test_interface_drops_fail_naming_each_interface() -> None:
    r = result("interface_drops", healthy(), _with_errors(101, 500, drops=True))
    assert r.status is F
    assert "eth1 (50/s)" in r.message
    assert "eth0 (10.1/s)" in r.message
    assert r.message.index("eth1") < r.message.index("eth0")  # worst first


def test_drops_are_judged_against_the_drop_limit_not_the_error_limit() -> None:
    r = result("interface_drops", healthy(), _with_errors(50, 50, drops=True))
    assert r.status is P  # 5/s of drops is under the drop limit of 10/s


@pytest.mark.parametrize("check", ["interface_errors", "interface_drops"])
def test_rate_checks_skip_with_a_single_sample(check: str) -> None:
    r = result(check, healthy())
    assert r.status is S
    assert r.message == "needs two samples"


@pytest.mark.parametrize("check", ["interface_errors", "interface_drops"])
def test_rate_checks_warn_rather_than_raise_on_samples_out_of_order(check: str) -> None:
    r = result(check, healthy(T0 + timedelta(seconds=5)), healthy())
    assert r.status is W
    assert "later" in r.message


# --- Alarms and daemons --------------------------------------------------------------------


def test_a_critical_alarm_fails_and_is_listed() -> None:
    sample = healthy(
        alarms=(Alarm("critical", "PSU 2 failed"), Alarm("minor", "fan speed high")),
    )
    r = result("alarms", sample)
    assert r.status is F
    assert "PSU 2 failed" in r.message
    assert "fan speed" not in r.message
    assert r.observed == ("critical: PSU 2 failed",)


def test_alarms_of_other_severities_pass_unless_configured() -> None:
    sample = healthy(alarms=(Alarm("major", "link flap storm"),))
    assert result("alarms", sample).status is P
    r = result("alarms", sample, p=params(alarms={"severities": ["critical", "major"]}))
    assert r.status is F
    assert "link flap storm" in r.message


def test_stopped_daemons_fail_naming_them() -> None:
    sample = healthy(daemons={"zebra": False, "bgpd": True, "lldpd": False})
    r = result("daemons", sample)
    assert r.status is F
    assert r.message == "2 daemons not running: lldpd, zebra"
    assert r.as_dict()["observed"] == ["lldpd", "zebra"]


def test_unreported_daemons_skip() -> None:
    r = result("daemons", healthy(daemons={}))
    assert r.status is S
    assert r.message == "not reported"


# --- Switches, results, overall ------------------------------------------------------------


@pytest.mark.parametrize("check", CHECK_ORDER)
def test_a_disabled_check_skips_even_when_it_would_fail(check: str) -> None:
    failing = healthy(
        bgp_peers=(BgpPeer("10.0.0.1", "Idle", dropped=99),),
        cpu_idle_pct=1.0,
        memory_used_pct=99.0,
        alarms=(Alarm("critical", "on fire"),),
        daemons={"bgpd": False},
    )
    noisy = InterfaceCounters("eth0", True, rx_errors=10_000, rx_drops=10_000)
    later = replace(failing, at=T0 + timedelta(seconds=1), interfaces=(noisy,))
    failing = replace(failing, interfaces=(InterfaceCounters("eth0", True),))
    assert result(check, failing, later).status is F
    r = result(check, failing, later, params(**{check: {"enabled": False}}))
    assert r.status is S
    assert r.message == "disabled"


def test_as_dict_is_json() -> None:
    for r in evaluate(healthy(), _with_errors(50, 0), AdvancedParameters()):
        data = r.as_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["status"] == r.status.value


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], P),
        ([S, S], P),
        ([P, S], P),
        ([P, W, S], W),
        ([W, F, P], F),
        ([F], F),
    ],
)
def test_overall(statuses: list[CheckStatus], expected: CheckStatus) -> None:
    results = [CheckResult(f"c{i}", s, None, None, "") for i, s in enumerate(statuses)]
    assert overall(results) is expected


# --- Properties ----------------------------------------------------------------------------

names = st.text("abcdefxyz0123456789./-:", min_size=1, max_size=12)
counts = st.integers(min_value=0, max_value=10**12)
pcts = st.none() | st.floats(min_value=0, max_value=100)

peers = st.builds(
    BgpPeer,
    peer=names,
    state=st.sampled_from(["Established", "Idle", "Active", "Connect", "OpenSent", ""]),
    dropped=counts,
    admin_down=st.booleans(),
)
interfaces = st.builds(
    InterfaceCounters,
    name=names,
    oper_up=st.booleans(),
    rx_errors=counts,
    tx_errors=counts,
    rx_drops=counts,
    tx_drops=counts,
    carrier_transitions=counts,
)
alarms = st.builds(Alarm, severity=st.sampled_from(["critical", "major", "minor"]), message=names)


def samples(at: st.SearchStrategy[datetime]) -> st.SearchStrategy[HealthSample]:
    return st.builds(
        HealthSample,
        at=at,
        bgp_peers=st.lists(peers, max_size=6).map(tuple),
        interfaces=st.lists(interfaces, max_size=6).map(tuple),
        cpu_idle_pct=pcts,
        memory_used_pct=pcts,
        alarms=st.lists(alarms, max_size=4).map(tuple),
        daemons=st.dictionaries(names, st.booleans(), max_size=4),
    )


instants = st.datetimes(
    min_value=datetime(2030, 1, 1), max_value=datetime(2030, 1, 2), timezones=st.just(UTC)
)
parameters = st.builds(
    lambda enabled, down, flaps, idle, mem, err, drop, sev: params(
        bgp_down_peers={"enabled": enabled[0], "max": down},
        bgp_flaps={"enabled": enabled[1], "max": flaps},
        cpu_idle={"enabled": enabled[2], "min_pct": idle},
        memory={"enabled": enabled[3], "max_pct": mem},
        interface_errors={"enabled": enabled[4], "max_per_s": err},
        interface_drops={"enabled": enabled[5], "max_per_s": drop},
        alarms={"enabled": enabled[6], "severities": sev},
        daemons={"enabled": enabled[7]},
    ),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.integers(0, 5),
    st.integers(0, 10),
    st.floats(0, 100),
    st.floats(0, 100),
    st.floats(0, 1e6),
    st.floats(0, 1e6),
    st.lists(st.sampled_from(["critical", "major", "minor"]), unique=True),
)


@given(samples(instants), st.none() | samples(instants), parameters)
def test_evaluate_gives_one_result_per_check_in_order_and_never_raises(
    first: HealthSample, second: HealthSample | None, p: AdvancedParameters
) -> None:
    results = evaluate(first, second, p)
    assert [r.check for r in results] == list(CHECK_ORDER)
    assert all(r.message for r in results)
    verdict = overall(results)
    assert (verdict is F) == any(r.status is F for r in results)
    if verdict is not F:
        assert (verdict is W) == any(r.status is W for r in results)
    for r in results:
        assert json.loads(json.dumps(r.as_dict())) == r.as_dict()


@given(samples(instants), samples(instants))
def test_rates_are_never_negative(first: HealthSample, second: HealthSample) -> None:
    if second.at <= first.at:
        return
    for r in interface_rates(first, second):
        assert r.errors_per_s >= 0
        assert r.drops_per_s >= 0
        assert r.carrier_transitions_per_s >= 0
