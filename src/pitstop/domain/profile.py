"""What a driver declares about itself for the engine to plan around: the health checks that
apply to its devices and the time limits its steps need.

pitstop's built-in checks (``BUILTIN_CHECKS``) read router-shaped samples: BGP peers, CPU,
memory, interface counters, alarms, daemons. A load balancer has no BGP peers and a host no
routing daemons, and judging them by those checks would pass them for the wrong reason ("no
BGP peers reported"). So a driver names the built-in checks that apply (``checks``) and the
checks it judges itself (``own_checks``, reported in ``HealthSample.checks``); the others are
skipped with a message saying the driver does not report them. Likewise a step that waits on
the device (``config_check`` reloading a router's configuration) takes as long as the device
needs: ``step_timeouts`` replaces the engine's default limit of the named steps.

The defaults are those of a router, so a driver that declares nothing is judged as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The order built-in check results come in; also the names the API and the job log use.
BUILTIN_CHECKS: tuple[str, ...] = (
    "bgp_down_peers",
    "bgp_flaps",
    "cpu_idle",
    "memory",
    "interface_errors",
    "interface_drops",
    "alarms",
    "daemons",
)


@dataclass(frozen=True, slots=True)
class DriverProfile:
    """A driver's declaration: which checks judge its devices, and its steps' time limits."""

    checks: tuple[str, ...] = BUILTIN_CHECKS
    own_checks: tuple[str, ...] = ()
    step_timeouts: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [c for c in self.checks if c not in BUILTIN_CHECKS]
        if unknown:
            raise ValueError(
                f"unknown built-in checks {unknown}; the built-in ones are "
                f"{', '.join(BUILTIN_CHECKS)} (a driver's own go in own_checks)"
            )
        clash = [c for c in self.own_checks if c in BUILTIN_CHECKS]
        if clash:
            raise ValueError(f"own checks {clash} reuse built-in names")
        if len(set(self.own_checks)) != len(self.own_checks):
            raise ValueError("own checks must have distinct names")
        bad = {k: v for k, v in self.step_timeouts.items() if not v > 0}
        if bad:
            raise ValueError(f"step timeouts must be positive seconds: {bad}")

    def timeout_s(self, step: str, default: float) -> float:
        """The time limit of ``step`` on this driver's devices: declared, else ``default``."""
        return float(self.step_timeouts.get(step, default))
