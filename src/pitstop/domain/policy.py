"""Fabric policy: whether maintenance may start at all, and the role-level budgets.

``maintenance_allowed`` follows FrostFS's ``MaintenanceModeAllowed``: when false, new
activations are refused (``MAINTENANCE_DISALLOWED``), but the change is not retroactive:
devices already out of service stay there and may come back. An admin may force an activation
anyway, and must say why; the reason goes into the audit row of the status change.

Role budgets cap how many devices of one role may be unavailable at once, across the fabric,
like a redundancy group that every device of the role belongs to. Built-in defaults apply
unless a fabric overrides them (``100%`` lifts a cap).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pitstop.domain.errors import FieldError, Forbidden, MaintenanceDisallowed, ValidationFailed
from pitstop.domain.inventory import Budget
from pitstop.domain.roles import Role

# Contrail's rolling order never takes more than half the spines at once.
# The same rule as a device's role.
_ROLE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

DEFAULT_ROLE_BUDGETS: Mapping[str, Budget] = {"spine": Budget(50, percent=True)}


@dataclass(frozen=True, slots=True)
class FabricPolicy:
    maintenance_allowed: bool = True
    # Overrides only; see ``role_budgets`` for what applies.
    role_overrides: Mapping[str, Budget] = field(default_factory=dict)

    @property
    def role_budgets(self) -> dict[str, Budget]:
        return {**DEFAULT_ROLE_BUDGETS, **self.role_overrides}

    def role_budget(self, role: str) -> Budget | None:
        return self.role_budgets.get(role)

    def as_dict(self) -> dict[str, Any]:
        return {
            "maintenance_allowed": self.maintenance_allowed,
            "role_budgets": {r: str(b) for r, b in sorted(self.role_budgets.items())},
            "role_overrides": {r: str(b) for r, b in sorted(self.role_overrides.items())},
        }


def parse_role_budgets(
    raw: Mapping[str, Any], *, field_name: str = "role_budgets"
) -> dict[str, Budget]:
    """Role name to budget, refusing bad entries by name (nothing is half-applied)."""
    out: dict[str, Budget] = {}
    errors: list[FieldError] = []
    for role, value in raw.items():
        where = f"{field_name}.{role}"
        if not _ROLE.fullmatch(str(role)):
            errors.append(FieldError(where, "not a role name (lowercase letters, digits, - _)"))
            continue
        try:
            out[str(role)] = Budget.parse(value)
        except (ValueError, TypeError) as exc:
            errors.append(FieldError(where, str(exc)))
    if errors:
        raise ValidationFailed("bad role budgets", errors)
    return out


def stored_role_budgets(raw: Mapping[str, Any] | None) -> dict[str, Budget]:
    """What the database holds, already validated on write."""
    return {str(r): Budget.parse(v) for r, v in (raw or {}).items()}


def check_force(*, role: Role, force: bool, force_reason: str | None) -> str | None:
    """The force reason to record, or None when not forcing. Only admins may force, and a
    force without a reason is refused before anything changes."""
    reason = (force_reason or "").strip()
    if not force:
        if reason:
            raise ValidationFailed(
                "force_reason given without force",
                [FieldError("force_reason", "only used together with force")],
            )
        return None
    if role not in (Role.ADMIN, Role.ENGINE):
        raise Forbidden(f"only admins may force maintenance; this caller is {role.value}")
    if not reason:
        raise ValidationFailed(
            "a forced activation needs a reason",
            [FieldError("force_reason", "required when force is true")],
        )
    return reason


def check_allowed(policy: FabricPolicy, *, fabric: str, device: str, forced: str | None) -> None:
    """Refuse a new activation while the fabric disallows maintenance, unless forced."""
    if not policy.maintenance_allowed and forced is None:
        raise MaintenanceDisallowed(
            f"fabric {fabric} does not allow maintenance now, so {device} may not start it; "
            "an admin may force it with a reason",
            fabric=fabric,
            device=device,
        )
