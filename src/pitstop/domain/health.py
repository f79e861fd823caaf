"""Health checks: whether a device is fit to leave (or rejoin) service, judged from what its
driver sampled.

This module owns the verdict of each check and the sentence that explains it. Every check gives
exactly one ``CheckResult``, in a fixed order, so that a job's output reads the same from one
run to the next and an operator can find the line they look for. Messages name the peers,
interfaces and daemons at fault, because "bgp_down_peers: fail" alone sends someone to the
device to find out which.

Which checks apply is the driver's to declare (``DriverProfile``): a built-in check it does
not declare is skipped, saying so, and the checks it judges itself (``HealthSample.checks``)
follow the built-in ones, in the order it declared them.

Absolute checks (peers, CPU, memory, alarms, daemons) read the latest sample. Interface errors
and drops are judged as *rates* over the window between two samples: raw counters only ever
grow, and a link that had a bad day last year would fail forever.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pitstop.domain.metrics import BgpPeer, HealthSample, InterfaceRates, ReportedCheck
from pitstop.domain.parameters import AdvancedParameters, Checks, MaxRate
from pitstop.domain.profile import BUILTIN_CHECKS, DriverProfile

# The order built-in results come in; also the names the API and the job log use.
CHECK_ORDER: tuple[str, ...] = BUILTIN_CHECKS
ROUTER = DriverProfile()


class CheckStatus(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


# Lists are kept as tuples so that a result stays immutable; ``as_dict`` turns them into lists.
Observed = int | float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    status: CheckStatus
    observed: Observed
    threshold: Observed
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status.value,
            "observed": _jsonable(self.observed),
            "threshold": _jsonable(self.threshold),
            "message": self.message,
        }


def _jsonable(value: Observed) -> Any:
    return list(value) if isinstance(value, tuple) else value


def fmt(value: float) -> str:
    """A number as an operator reads it: ``45`` rather than ``45.0``, two decimals at most,
    but never a non-zero value shown as ``0``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    if text in ("0", "-0") and value != 0:
        return f"{value:.2g}"
    return text


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def skipped(check: str, message: str) -> CheckResult:
    return CheckResult(check, CheckStatus.SKIP, None, None, message)


# --- Rates -------------------------------------------------------------------------------------


def _grown(before: int, after: int) -> int:
    # A counter that went backwards was reset (reboot, clear counters): what it counted since
    # the reset is unknown, and a negative rate would hide real errors on other counters.
    return max(0, after - before)


def interface_rates(first: HealthSample, second: HealthSample) -> tuple[InterfaceRates, ...]:
    """Per-second error, drop and carrier-transition rates of every interface in both samples,
    in the order of the first. Raises ``ValueError`` unless ``second`` is later than ``first``."""
    dt = (second.at - first.at).total_seconds()
    if dt <= 0:
        raise ValueError(
            f"the second sample ({second.at.isoformat()}) must be later than the first "
            f"({first.at.isoformat()})"
        )
    later = {i.name: i for i in second.interfaces}
    rates: list[InterfaceRates] = []
    for a in first.interfaces:
        b = later.get(a.name)
        if b is None:
            continue
        errors = _grown(a.rx_errors, b.rx_errors) + _grown(a.tx_errors, b.tx_errors)
        drops = _grown(a.rx_drops, b.rx_drops) + _grown(a.tx_drops, b.tx_drops)
        flaps = _grown(a.carrier_transitions, b.carrier_transitions)
        rates.append(InterfaceRates(a.name, errors / dt, drops / dt, flaps / dt))
    return tuple(rates)


# --- The checks --------------------------------------------------------------------------------


def peer_down(peer: BgpPeer) -> bool:
    """A shut session is a down session: admin-down peers count, whatever state they report."""
    return peer.admin_down or not peer.up


def _describe_down(peer: BgpPeer) -> str:
    return f"{peer.peer} (admin down)" if peer.admin_down else f"{peer.peer} ({peer.state})"


def _bgp_down_peers(checks: Checks, latest: HealthSample) -> CheckResult:
    limit = checks.bgp_down_peers.max
    down = [p for p in latest.bgp_peers if peer_down(p)]
    named = ", ".join(_describe_down(p) for p in down)
    if not latest.bgp_peers:
        return CheckResult("bgp_down_peers", CheckStatus.PASS, 0, limit, "no BGP peers reported")
    if len(down) > limit:
        message = f"{_plural(len(down), 'BGP peer')} down: {named}"
        if limit:
            message += f" (at most {limit} allowed)"
        return CheckResult("bgp_down_peers", CheckStatus.FAIL, len(down), limit, message)
    if down:
        message = f"{_plural(len(down), 'BGP peer')} down, within the {limit} allowed: {named}"
    else:
        message = f"all {_plural(len(latest.bgp_peers), 'BGP peer')} established"
    return CheckResult("bgp_down_peers", CheckStatus.PASS, len(down), limit, message)


def _bgp_flaps(checks: Checks, latest: HealthSample) -> CheckResult:
    # The session-dropped counter since the routing daemon started, as fabric managers use it:
    # it needs no second sample, and a peer that flaps keeps failing until someone looks.
    limit = checks.bgp_flaps.max
    most = max((p.dropped for p in latest.bgp_peers), default=0)
    flapping = sorted(
        (p for p in latest.bgp_peers if p.dropped > limit), key=lambda p: (-p.dropped, p.peer)
    )
    if flapping:
        named = ", ".join(f"{p.peer} ({_plural(p.dropped, 'drop')})" for p in flapping)
        message = (
            f"{_plural(len(flapping), 'BGP peer')} dropped more than "
            f"{_plural(limit, 'time')}: {named}"
        )
        return CheckResult("bgp_flaps", CheckStatus.FAIL, most, limit, message)
    message = (
        f"no BGP peer dropped more than {_plural(limit, 'time')} (most: {most})"
        if latest.bgp_peers
        else "no BGP peers reported"
    )
    return CheckResult("bgp_flaps", CheckStatus.PASS, most, limit, message)


def _cpu_idle(checks: Checks, latest: HealthSample) -> CheckResult:
    minimum = checks.cpu_idle.min_pct
    idle = latest.cpu_idle_pct
    if idle is None:
        return CheckResult(
            "cpu_idle", CheckStatus.WARN, None, minimum, "the driver does not report CPU idle"
        )
    if idle < minimum:
        message = f"CPU idle {fmt(idle)} % is below the minimum of {fmt(minimum)} %"
        return CheckResult("cpu_idle", CheckStatus.FAIL, idle, minimum, message)
    message = f"CPU idle {fmt(idle)} % (at least {fmt(minimum)} % required)"
    return CheckResult("cpu_idle", CheckStatus.PASS, idle, minimum, message)


def _memory(checks: Checks, latest: HealthSample) -> CheckResult:
    maximum = checks.memory.max_pct
    used = latest.memory_used_pct
    if used is None:
        return CheckResult(
            "memory", CheckStatus.WARN, None, maximum, "the driver does not report memory use"
        )
    if used > maximum:
        message = f"memory {fmt(used)} % used, above the maximum of {fmt(maximum)} %"
        return CheckResult("memory", CheckStatus.FAIL, used, maximum, message)
    message = f"memory {fmt(used)} % used (at most {fmt(maximum)} % allowed)"
    return CheckResult("memory", CheckStatus.PASS, used, maximum, message)


def _rate_check(
    check: str,
    noun: str,
    rule: MaxRate,
    rates: Sequence[InterfaceRates],
    pick: Callable[[InterfaceRates], float],
) -> CheckResult:
    # At the limit passes, as for every threshold here: the limit is what is allowed.
    limit = rule.max_per_s
    if not rates:
        return CheckResult(check, CheckStatus.PASS, None, limit, "no interfaces in both samples")
    highest = max(pick(r) for r in rates)
    over = sorted((r for r in rates if pick(r) > limit), key=lambda r: (-pick(r), r.name))
    if over:
        named = ", ".join(f"{r.name} ({fmt(pick(r))}/s)" for r in over)
        message = f"{_plural(len(over), 'interface')} over {fmt(limit)} {noun}/s: {named}"
        return CheckResult(check, CheckStatus.FAIL, highest, limit, message)
    count = _plural(len(rates), "interface")
    message = f"{noun} at most {fmt(highest)}/s on {count} (limit {fmt(limit)}/s)"
    return CheckResult(check, CheckStatus.PASS, highest, limit, message)


def _alarms(checks: Checks, latest: HealthSample) -> CheckResult:
    severities = tuple(checks.alarms.severities)
    raised = [a for a in latest.alarms if a.severity in severities]
    if raised:
        described = tuple(f"{a.severity}: {a.message}" for a in raised)
        message = f"{_plural(len(raised), 'alarm')} raised: " + "; ".join(described)
        return CheckResult("alarms", CheckStatus.FAIL, described, severities, message)
    others = len(latest.alarms)
    wanted = "/".join(severities) or "failing"
    message = f"no {wanted} alarm" + (f" ({_plural(others, 'other alarm')})" if others else "")
    return CheckResult("alarms", CheckStatus.PASS, (), severities, message)


def _daemons(latest: HealthSample) -> CheckResult:
    if not latest.daemons:
        return skipped("daemons", "not reported")
    stopped = tuple(sorted(name for name, running in latest.daemons.items() if not running))
    if stopped:
        message = f"{_plural(len(stopped), 'daemon')} not running: {', '.join(stopped)}"
        return CheckResult("daemons", CheckStatus.FAIL, stopped, None, message)
    message = f"all {_plural(len(latest.daemons), 'daemon')} running"
    return CheckResult("daemons", CheckStatus.PASS, (), None, message)


def _rate_results(
    checks: Checks, first: HealthSample, second: HealthSample | None
) -> tuple[CheckResult, CheckResult]:
    errors_rule, drops_rule = checks.interface_errors, checks.interface_drops
    if second is None:
        return skipped("interface_errors", "needs two samples"), skipped(
            "interface_drops", "needs two samples"
        )
    try:
        rates = interface_rates(first, second)
    except ValueError as exc:
        # A caller's mistake rather than the device's state: say so, but do not fail the device.
        return (
            CheckResult("interface_errors", CheckStatus.WARN, None, None, f"no rates: {exc}"),
            CheckResult("interface_drops", CheckStatus.WARN, None, None, f"no rates: {exc}"),
        )
    return (
        _rate_check("interface_errors", "errors", errors_rule, rates, lambda r: r.errors_per_s),
        _rate_check("interface_drops", "drops", drops_rule, rates, lambda r: r.drops_per_s),
    )


def _reported(name: str, latest: HealthSample) -> CheckResult:
    found: ReportedCheck | None = next((c for c in latest.checks if c.name == name), None)
    if found is None:
        return CheckResult(name, CheckStatus.WARN, None, None, "the driver did not report it")
    try:
        status = CheckStatus(found.status)
    except ValueError:
        status = CheckStatus.WARN
        return CheckResult(
            name, status, found.observed, found.threshold, f"unknown status {found.status!r}"
        )
    return CheckResult(name, status, found.observed, found.threshold, found.message)


def evaluate(
    first: HealthSample,
    second: HealthSample | None,
    params: AdvancedParameters,
    profile: DriverProfile = ROUTER,
) -> list[CheckResult]:
    """Every built-in check, in ``CHECK_ORDER``, then the driver's own ones in the order it
    declared them; a disabled check, or one the driver does not report, is there as a skip."""
    checks = params.checks
    latest = second if second is not None else first
    errors, drops = _rate_results(checks, first, second)
    # Cheap and pure, so every check is worked out; a disabled one is then replaced by a skip.
    computed = {
        "bgp_down_peers": (checks.bgp_down_peers.enabled, _bgp_down_peers(checks, latest)),
        "bgp_flaps": (checks.bgp_flaps.enabled, _bgp_flaps(checks, latest)),
        "cpu_idle": (checks.cpu_idle.enabled, _cpu_idle(checks, latest)),
        "memory": (checks.memory.enabled, _memory(checks, latest)),
        "interface_errors": (checks.interface_errors.enabled, errors),
        "interface_drops": (checks.interface_drops.enabled, drops),
        "alarms": (checks.alarms.enabled, _alarms(checks, latest)),
        "daemons": (checks.daemons.enabled, _daemons(latest)),
    }
    results: list[CheckResult] = []
    applies = set(profile.checks)
    for name in CHECK_ORDER:
        enabled, result = computed[name]
        if name not in applies:
            result = skipped(name, "not reported by this driver")
        elif not enabled:
            result = skipped(name, "disabled")
        results.append(result)
    results += [_reported(name, latest) for name in profile.own_checks]
    return results


def overall(results: Iterable[CheckResult]) -> CheckStatus:
    """Fail if anything failed, else warn if anything warned, else pass; skips do not count."""
    statuses = {r.status for r in results}
    if CheckStatus.FAIL in statuses:
        return CheckStatus.FAIL
    if CheckStatus.WARN in statuses:
        return CheckStatus.WARN
    return CheckStatus.PASS
