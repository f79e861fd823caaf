"""Request and response bodies. Requests refuse unknown fields; responses never carry secrets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from pitstop.domain.audit import AuditEntry
from pitstop.domain.errors import ValidationFailed
from pitstop.domain.inventory import Budget, Connection, Device, Fabric, RedundancyGroup
from pitstop.domain.lifecycle import DeviceStatus, allowed_targets
from pitstop.domain.limits import (
    MAX_DESCRIPTION,
    MAX_GROUPS,
    MAX_INT64,
    MAX_LABELS,
    MAX_OPTION_VALUE,
    MAX_OPTIONS,
    MAX_REASON,
    MAX_TICKET,
    MAX_TOKEN_FABRICS,
)
from pitstop.domain.names import label_problem, name_problem
from pitstop.domain.parameters import resolve
from pitstop.domain.roles import Role
from pitstop.domain.tokens import TokenInfo
from pitstop.storage.devices import DeviceSpec

T = TypeVar("T")

_SECRET_WORDS = ("password", "secret", "token", "passphrase", "private_key", "apikey", "api_key")


class EventStream(StreamingResponse):
    """Server-sent events; as a route's ``response_class``, documented as text/event-stream."""

    media_type = "text/event-stream"


class Strict(BaseModel):
    # Every number a request carries is finite (a timeout of inf never ends).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Every integer a request carries fits the signed 64-bit columns it is compared with.
Int64 = Annotated[int, Field(ge=0, le=MAX_INT64)]


def _in_utc_range(value: datetime) -> datetime:
    """Stored and compared in UTC: 9999-12-31T23:59-12:00 has no UTC time."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("the time is out of range once converted to UTC") from exc
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_in_utc_range)]


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        problem = label_problem(k, v)
        if problem:
            raise ValueError(problem)
    return value


Name = Annotated[str, Field(min_length=1, max_length=63)]
Labels = Annotated[dict[str, str], Field(default_factory=dict, max_length=MAX_LABELS)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]
Reason = Annotated[str, Field(max_length=MAX_REASON)]
Ticket = Annotated[str, Field(max_length=MAX_TICKET)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


# Fabrics and groups --------------------------------------------------------------------------


def _check_parameters(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refused here, not half-way through a job."""
    if value is not None:
        try:
            resolve(value, field="parameters")
        except ValidationFailed as exc:
            raise ValueError("; ".join(f"{e.field}: {e.message}" for e in exc.errors)) from exc
    return value


class FabricIn(Strict):
    name: Name
    description: Description = ""
    labels: Labels
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Fabric defaults for advanced_parameters (see /api/v1/parameters/schema)",
    )

    _name = field_validator("name")(_check_name)
    _labels = field_validator("labels")(_check_labels)
    _parameters = field_validator("parameters")(_check_parameters)


class FabricPatch(Strict):
    description: Description | None = None
    labels: dict[str, str] | None = Field(default=None, max_length=MAX_LABELS)
    parameters: dict[str, Any] | None = Field(
        default=None, description="Replaces the fabric's advanced_parameters defaults"
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return None if v is None else _check_labels(v)

    _parameters = field_validator("parameters")(_check_parameters)


class FabricOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    labels: dict[str, str]
    parameters: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, f: Fabric) -> FabricOut:
        return cls(
            id=f.id,
            name=f.name,
            description=f.description,
            labels=f.labels,
            parameters=f.parameters,
            created_at=f.created_at,
            updated_at=f.updated_at,
        )


def _check_budget(value: str | int) -> str:
    return str(Budget.parse(value))


class GroupIn(Strict):
    name: Name
    max_unavailable: str | int = Field(
        description="How many members may be unavailable at once: a count (1) or a share (25%)"
    )
    description: Description = ""

    _name = field_validator("name")(_check_name)
    _budget = field_validator("max_unavailable")(_check_budget)


class GroupPatch(Strict):
    max_unavailable: str | int | None = None
    description: Description | None = None

    @field_validator("max_unavailable")
    @classmethod
    def _budget(cls, v: str | int | None) -> str | None:
        return None if v is None else _check_budget(v)


class GroupOut(BaseModel):
    id: uuid.UUID
    fabric_id: uuid.UUID
    name: str
    max_unavailable: str
    members: int
    description: str
    created_at: datetime

    @classmethod
    def of(cls, g: RedundancyGroup, members: int) -> GroupOut:
        return cls(
            id=g.id,
            fabric_id=g.fabric_id,
            name=g.name,
            max_unavailable=str(g.max_unavailable),
            members=members,
            description=g.description,
            created_at=g.created_at,
        )


# Devices -------------------------------------------------------------------------------------


class ConnectionIn(Strict):
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    credentials_ref: str | None = Field(
        default=None,
        max_length=255,
        description="Where the secret lives (env:VAR or file:/path); never the secret itself",
    )
    options: dict[str, str] = Field(default_factory=dict, max_length=MAX_OPTIONS)

    @field_validator("options")
    @classmethod
    def _no_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not key or len(key) > 63:
                raise ValueError(f"option key {key[:70]!r} must be 1 to 63 characters")
            if len(value) > MAX_OPTION_VALUE:
                raise ValueError(
                    f"option {key!r} must be at most {MAX_OPTION_VALUE} characters "
                    f"(got {len(value)})"
                )
            if any(word in key.lower() for word in _SECRET_WORDS):
                raise ValueError(
                    f"option {key!r} looks like a secret; store secrets outside pitstop and "
                    "give their location in credentials_ref"
                )
        return v

    def to_domain(self) -> Connection:
        return Connection(self.host, self.port, self.credentials_ref, dict(self.options))


class DeviceFields(Strict):
    role: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    driver: Annotated[str, Field(min_length=1, max_length=63)] = "simulated"
    connection: ConnectionIn = Field(default_factory=ConnectionIn)
    labels: Labels
    groups: list[Name] = Field(default_factory=list, max_length=MAX_GROUPS)

    _labels = field_validator("labels")(_check_labels)

    @field_validator("groups")
    @classmethod
    def _unique_groups(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a group is listed twice")
        return v


class DeviceIn(DeviceFields):
    name: Name
    status: DeviceStatus = Field(
        default=DeviceStatus.ACTIVATED,
        description="Starting status: activated (in service) or pending (not yet commissioned)",
    )

    _name = field_validator("name")(_check_name)

    @field_validator("status")
    @classmethod
    def _start(cls, v: DeviceStatus) -> DeviceStatus:
        if v not in (DeviceStatus.PENDING, DeviceStatus.ACTIVATED):
            raise ValueError("a new device starts as activated or pending")
        return v

    def to_spec(self) -> DeviceSpec:
        return DeviceSpec(
            name=self.name,
            role=self.role,
            driver=self.driver,
            connection=self.connection.to_domain(),
            labels=self.labels,
            groups=tuple(self.groups),
            status=self.status,
        )


class DeviceCreate(DeviceIn):
    fabric: Name


RolePattern = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class DevicePatch(Strict):
    """Only the fields given change. ``null`` is refused: to empty labels or groups, send
    ``{}`` or ``[]``."""

    role: RolePattern | None = None
    driver: str | None = Field(default=None, min_length=1, max_length=63)
    connection: ConnectionIn | None = None
    labels: dict[str, str] | None = Field(default=None, max_length=MAX_LABELS)
    groups: list[Name] | None = Field(default=None, max_length=MAX_GROUPS)
    version: Int64 | None = Field(default=None, description="Refuse the change unless current")

    # Validators run only for fields that were sent, so a None here is an explicit null.
    @field_validator("role", "driver", "connection", "labels", "groups")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_labels(v)

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a group is listed twice")
        return v


class StatusChange(Strict):
    status: DeviceStatus
    reason: Reason | None = None
    ticket: Ticket | None = None
    version: Int64 | None = Field(default=None, description="Refuse the change unless current")
    force: bool = Field(
        default=False, description="Admins: leave service though the fabric disallows it"
    )
    force_reason: Reason | None = Field(
        default=None, description="Required with force; recorded in the audit"
    )


class MaintenanceOut(BaseModel):
    reason: str | None
    ticket: str | None
    requested_by: str | None
    entered_at: datetime | None
    expected_end: datetime | None


class ConnectionOut(BaseModel):
    host: str | None
    port: int | None
    credentials_ref: str | None
    options: dict[str, str]


class DeviceOut(BaseModel):
    id: uuid.UUID
    fabric: str
    fabric_id: uuid.UUID
    name: str
    role: str
    driver: str
    connection: ConnectionOut
    labels: dict[str, str]
    groups: list[str]
    status: DeviceStatus
    status_reason: str | None
    status_changed_by: str | None
    status_changed_at: datetime | None
    maintenance: MaintenanceOut
    needs_attention: bool
    attention_reason: str | None
    version: int
    allowed_transitions: list[DeviceStatus] = Field(
        description="Statuses the caller's role may move this device to"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Device, role: Role) -> DeviceOut:
        m, c = d.maintenance, d.connection
        return cls(
            id=d.id,
            fabric=d.fabric,
            fabric_id=d.fabric_id,
            name=d.name,
            role=d.role,
            driver=d.driver,
            connection=ConnectionOut(
                host=c.host, port=c.port, credentials_ref=c.credentials_ref, options=c.options
            ),
            labels=d.labels,
            groups=list(d.groups),
            status=d.status,
            status_reason=d.status_reason,
            status_changed_by=d.status_changed_by,
            status_changed_at=d.status_changed_at,
            maintenance=MaintenanceOut(
                reason=m.reason,
                ticket=m.ticket,
                requested_by=m.requested_by,
                entered_at=m.entered_at,
                expected_end=m.expected_end,
            ),
            needs_attention=d.needs_attention,
            attention_reason=d.attention_reason,
            version=d.version,
            allowed_transitions=allowed_targets(d.status, role),
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


# Import -------------------------------------------------------------------------------------


class ImportResult(BaseModel):
    dry_run: bool
    fabrics_created: list[str]
    groups_created: list[str]
    devices_created: list[str]


# Tokens -------------------------------------------------------------------------------------


class TokenIn(Strict):
    name: Name
    role: Role
    fabrics: list[Name] = Field(
        default_factory=list, max_length=MAX_TOKEN_FABRICS, description="Empty: every fabric"
    )
    expires_in: str | None = Field(
        default=None, max_length=32, description="A duration: 30d, 12h, 2w (at most 3653d)"
    )

    @field_validator("role")
    @classmethod
    def _token_role(cls, v: Role) -> Role:
        if v is Role.ENGINE:
            raise ValueError("engine is not a token role")
        return v

    _name = field_validator("name")(_check_name)


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    fabrics: list[str]
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, t: TokenInfo) -> TokenOut:
        return cls(
            id=t.id,
            name=t.name,
            role=t.role,
            fabrics=list(t.fabrics),
            prefix=t.prefix,
            created_at=t.created_at,
            created_by=t.created_by,
            expires_at=t.expires_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown only in this response; store it now.")


class WhoAmI(BaseModel):
    name: str
    role: Role
    fabrics: list[str]


# Audit --------------------------------------------------------------------------------------


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    via: str
    fabric: str | None
    device: str | None
    device_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    ticket: str | None
    job_id: uuid.UUID | None
    details: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, e: AuditEntry) -> AuditOut:
        return cls(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            via=e.via,
            fabric=e.fabric,
            device=e.device,
            device_id=e.device_id,
            from_status=e.from_status,
            to_status=e.to_status,
            reason=e.reason,
            ticket=e.ticket,
            job_id=e.job_id,
            details=dict(e.details),
            hash=e.hash,
        )


class AuditProblemOut(BaseModel):
    seq: int
    problem: str


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    problems: list[AuditProblemOut]


class TransitionOut(BaseModel):
    from_status: DeviceStatus
    to_status: DeviceStatus
    roles: list[Role]
