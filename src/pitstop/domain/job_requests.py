"""What a job was asked to do: the request as submitted, and the parameters it runs with.

A job's parameters are resolved once, when it is submitted: the built-in defaults, then the
fabric's defaults, then the job's own overrides (``parameters.resolve``). The result is stored
with the job as ``effective`` and is what every run of the job uses, a retry and a takeover
included. A fabric default changed after the submit changes the jobs submitted after it,
never one already queued or running.

Stored as JSON in the job's ``params`` column. Jobs stored before the effective parameters
were kept have no ``effective_parameters`` key: they resolve at run time as they always did
(``JobRequest.effective`` is ``None``), and read otherwise the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pitstop.domain.parameters import AdvancedParameters
from pitstop.domain.roles import Via

# The keys of the stored JSON. ``advanced_parameters`` keeps its historical name, so a job
# stored before this module existed reads as a request without effective parameters.
_OVERRIDES = "advanced_parameters"
_EFFECTIVE = "effective_parameters"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """``overrides``: the ``advanced_parameters`` as submitted. ``effective``: the parameters
    resolved from them at submit; ``None`` for a job stored before they were kept.
    ``force_reason``: set when an admin went ahead though the fabric disallows maintenance."""

    reason: str | None = None
    ticket: str | None = None
    expected_end: datetime | None = None
    via: Via | None = None
    force_reason: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    effective: AdvancedParameters | None = None

    @property
    def forced(self) -> bool:
        return self.force_reason is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            _OVERRIDES: dict(self.overrides),
            "reason": self.reason,
            "ticket": self.ticket,
            "expected_end": self.expected_end.isoformat() if self.expected_end else None,
            "via": self.via.value if self.via else None,
        }
        if self.force_reason is not None:
            out["force_reason"] = self.force_reason
        if self.effective is not None:
            out[_EFFECTIVE] = self.effective.model_dump(mode="json")
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> JobRequest:
        data = data or {}
        effective = data.get(_EFFECTIVE)
        via = data.get("via")
        return cls(
            reason=data.get("reason"),
            ticket=data.get("ticket"),
            expected_end=_aware(data.get("expected_end")),
            via=Via(via) if via else None,
            force_reason=data.get("force_reason"),
            overrides=dict(data.get(_OVERRIDES) or {}),
            effective=AdvancedParameters.model_validate(effective) if effective else None,
        )


def _aware(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime; one stored without an offset is UTC."""
    if not value:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
