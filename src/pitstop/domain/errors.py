"""The error catalogue.

Every error pitstop reports is a class here with a stable ``code``. The API maps each one to an
RFC 9457 problem+json response; the CLI prints the code first. Codes are a public contract:
add new ones, never rename or reuse one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class PitstopError(Exception):
    """Base of every error with a stable code."""

    code: ClassVar[str] = "INTERNAL"
    http_status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = extra

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class NotFound(PitstopError):
    code = "NOT_FOUND"
    http_status = 404
    title = "Not found"


class FieldError:
    """One bad field: where it is (row and field, or a JSON path) and what is wrong."""

    __slots__ = ("field", "message", "row")

    def __init__(self, field: str, message: str, row: int | None = None) -> None:
        self.field = field
        self.message = message
        self.row = row

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        return out

    def __repr__(self) -> str:
        where = f"row {self.row}, " if self.row is not None else ""
        return f"{where}{self.field}: {self.message}"


class ValidationFailed(PitstopError):
    code = "VALIDATION_FAILED"
    http_status = 422
    title = "Validation failed"

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail, errors=[e.as_dict() for e in errors])
        self.errors = list(errors)


class PayloadTooLarge(PitstopError):
    """A request body over the server's configured limit; ``limit`` is that limit in bytes."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    title = "Payload too large"


class Unauthenticated(PitstopError):
    code = "UNAUTHENTICATED"
    http_status = 401
    title = "Unauthenticated"


class Forbidden(PitstopError):
    code = "FORBIDDEN"
    http_status = 403
    title = "Forbidden"


class RateLimited(PitstopError):
    """Too many failed authentications from one client address; ``retry_after_s`` says
    when it may try again (also the ``Retry-After`` header)."""

    code = "RATE_LIMITED"
    http_status = 429
    title = "Too many failed attempts"

    def __init__(self, detail: str, *, retry_after_s: int = 60) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class TransitionNotAllowed(PitstopError):
    code = "TRANSITION_NOT_ALLOWED"
    http_status = 409
    title = "Transition not allowed"

    def __init__(self, detail: str, *, current: str, requested: str, allowed: Sequence[str]):
        super().__init__(detail, current=current, requested=requested, allowed=list(allowed))
        self.allowed = list(allowed)


class Conflict(PitstopError):
    code = "CONFLICT"
    http_status = 409
    title = "Conflict"


class AmbiguousReference(PitstopError):
    code = "AMBIGUOUS_REFERENCE"
    http_status = 409
    title = "Ambiguous reference"


class DeviceUnderMaintenance(PitstopError):
    code = "DEVICE_UNDER_MAINTENANCE"
    http_status = 409
    title = "Device under maintenance"


class DeviceBusy(PitstopError):
    code = "DEVICE_BUSY"
    http_status = 409
    title = "Device busy"


class MaintenanceDisallowed(PitstopError):
    code = "MAINTENANCE_DISALLOWED"
    http_status = 409
    title = "Maintenance disallowed"


class BudgetExceeded(PitstopError):
    code = "BUDGET_EXCEEDED"
    http_status = 409
    title = "Budget exceeded"


class DeviceUnreachable(PitstopError):
    """The driver could not reach the device at all."""

    code = "DEVICE_UNREACHABLE"
    http_status = 502
    title = "Device unreachable"


class DriverTimeout(PitstopError):
    """The device answered too slowly."""

    code = "DRIVER_TIMEOUT"
    http_status = 504
    title = "Driver timeout"


class DriverError(PitstopError):
    """The device or its software refused or failed an operation."""

    code = "DRIVER_ERROR"
    http_status = 502
    title = "Driver error"


class WorkflowChanged(PitstopError):
    """A job's step is no longer part of its workflow (it was queued by an older pitstop): the
    job fails at that step, its undo runs, and a new job runs the workflow as it is now."""

    code = "WORKFLOW_CHANGED"
    http_status = 409
    title = "Workflow changed"


# Campaigns.


class CampaignInvalid(PitstopError):
    """Offline validation: the campaign can never run as defined (a cycle, a group that
    allows nobody out, an unknown device...). ``reasons`` lists every problem found."""

    code = "CAMPAIGN_INVALID"
    http_status = 422
    title = "Campaign invalid"

    def __init__(self, detail: str, *, reasons: Sequence[str] = ()) -> None:
        super().__init__(detail, reasons=list(reasons))
        self.reasons = list(reasons)


class CampaignStateConflict(PitstopError):
    """The campaign is not in a state that allows the request (resume a finished one...)."""

    code = "CAMPAIGN_STATE_CONFLICT"
    http_status = 409
    title = "Campaign state conflict"


def catalogue() -> Mapping[str, type[PitstopError]]:
    """Every error class by its code: the stable, documented list."""
    classes: list[type[PitstopError]] = [
        NotFound,
        ValidationFailed,
        PayloadTooLarge,
        Unauthenticated,
        Forbidden,
        RateLimited,
        TransitionNotAllowed,
        Conflict,
        AmbiguousReference,
        DeviceUnderMaintenance,
        DeviceBusy,
        MaintenanceDisallowed,
        BudgetExceeded,
        DeviceUnreachable,
        DriverTimeout,
        DriverError,
        WorkflowChanged,
    ]
    classes += [CampaignInvalid, CampaignStateConflict]
    return {c.code: c for c in classes}
