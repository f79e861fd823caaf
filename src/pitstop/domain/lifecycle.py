"""Device statuses and the one table of allowed transitions.

The table merges the provisioning lifecycle of a device (pending, activated, decommissioned)
with the maintenance states of a fabric manager (draining, maintenance, undraining, error).
It is the only place that says which status may follow which, and who may make the move.

Operators may move a device by hand along the maintenance path (in, out, and back out of a
drain). The exit path goes through ``undraining`` because the table has no direct
``maintenance -> activated`` edge: coming back into service is always a visible step.
Error recovery and decommissioning are for admins; ``error`` is normally set by the engine
when a device's real state is uncertain.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pitstop.domain.errors import Forbidden, TransitionNotAllowed
from pitstop.domain.roles import Role


class DeviceStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVATED = "activated"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"
    UNDRAINING = "undraining"
    ERROR = "error"
    DECOMMISSIONED = "decommissioned"


S = DeviceStatus
TERMINAL: frozenset[DeviceStatus] = frozenset({S.DECOMMISSIONED})

# Statuses that take a device out of its redundancy group's capacity.
UNAVAILABLE: frozenset[DeviceStatus] = frozenset({S.DRAINING, S.MAINTENANCE, S.UNDRAINING, S.ERROR})

# The statuses an operator may set by hand (where the table has an edge).
OPERATOR_MANUAL: frozenset[DeviceStatus] = frozenset(
    {S.ACTIVATED, S.DRAINING, S.MAINTENANCE, S.UNDRAINING}
)

_OPS = frozenset({Role.OPERATOR, Role.ADMIN, Role.ENGINE})
_ENGINE_OR_ADMIN = frozenset({Role.ADMIN, Role.ENGINE})
_ADMIN = frozenset({Role.ADMIN})


def _build_table() -> dict[tuple[DeviceStatus, DeviceStatus], frozenset[Role]]:
    table: dict[tuple[DeviceStatus, DeviceStatus], frozenset[Role]] = {
        (S.PENDING, S.ACTIVATED): _ADMIN,
        (S.ACTIVATED, S.DRAINING): _OPS,
        (S.DRAINING, S.MAINTENANCE): _OPS,
        (S.DRAINING, S.ACTIVATED): _OPS,
        (S.MAINTENANCE, S.UNDRAINING): _OPS,
        (S.UNDRAINING, S.ACTIVATED): _OPS,
        (S.UNDRAINING, S.MAINTENANCE): _OPS,
        (S.ERROR, S.ACTIVATED): _ADMIN,
        (S.ERROR, S.MAINTENANCE): _ADMIN,
    }
    for status in DeviceStatus:
        if status not in TERMINAL and status is not S.ERROR:
            table[(status, S.ERROR)] = _ENGINE_OR_ADMIN
    for status in (S.ACTIVATED, S.MAINTENANCE, S.ERROR):
        table[(status, S.DECOMMISSIONED)] = _ADMIN
    return table


TRANSITIONS: Mapping[tuple[DeviceStatus, DeviceStatus], frozenset[Role]] = _build_table()


def targets_from(current: DeviceStatus) -> list[DeviceStatus]:
    """Every status the table allows after ``current``, whoever asks."""
    return [to for (frm, to) in TRANSITIONS if frm is current]


def allowed_targets(current: DeviceStatus, role: Role) -> list[DeviceStatus]:
    """The statuses ``role`` may move a device to from ``current``."""
    return [to for (frm, to), roles in TRANSITIONS.items() if frm is current and role in roles]


@dataclass(frozen=True, slots=True)
class Transition:
    frm: DeviceStatus
    to: DeviceStatus


def check_transition(current: DeviceStatus, target: DeviceStatus, role: Role) -> Transition:
    """Check a requested move against the table, then against the role.

    Raises ``TransitionNotAllowed`` (listing what is allowed from here) when the table has no such
    edge, and ``Forbidden`` when the edge exists but this role may not take it.
    """
    roles = TRANSITIONS.get((current, target))
    if roles is None:
        allowed = [t.value for t in allowed_targets(current, role)]
        raise TransitionNotAllowed(
            f"cannot move from {current.value} to {target.value}; "
            f"allowed from {current.value}: {', '.join(allowed) or 'none'}",
            current=current.value,
            requested=target.value,
            allowed=allowed,
        )
    if role not in roles:
        allowed = [t.value for t in allowed_targets(current, role)]
        raise Forbidden(
            f"role {role.value} may not move a device from {current.value} to {target.value}; "
            f"allowed for {role.value}: {', '.join(allowed) or 'none'}",
            current=current.value,
            requested=target.value,
            allowed=allowed,
        )
    return Transition(current, target)
