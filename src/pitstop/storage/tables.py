"""The SQLAlchemy tables. Migrations in ``migrations/versions`` must match these exactly
(a test compares them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pitstop.storage.clock import as_utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An instant, stored as UTC on every backend. SQLite keeps no offset: without this, an
    aware time with +02:00 would be stored as its wall time and read back two hours off."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
    }


class FabricRow(Base):
    __tablename__ = "fabrics"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fabric-level defaults for advanced_parameters (a partial mapping, merged over built-ins).
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Fabric policy (domain/policy.py): new activations allowed, and role budget overrides.
    maintenance_allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    role_budgets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")


class GroupRow(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("fabric_id", "name", name="uq_groups_fabric_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    fabric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fabrics.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    max_unavailable: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class DeviceRow(Base):
    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("fabric_id", "name", name="uq_devices_fabric_name"),
        Index("ix_devices_name", "name"),
        Index("ix_devices_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    fabric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fabrics.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(63))
    driver: Mapped[str] = mapped_column(String(63))
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    credentials_ref: Mapped[str | None] = mapped_column(String(255))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_by: Mapped[str | None] = mapped_column(String(127))
    status_changed_at: Mapped[datetime | None]
    mnt_reason: Mapped[str | None] = mapped_column(Text)
    mnt_ticket: Mapped[str | None] = mapped_column(String(127))
    mnt_requested_by: Mapped[str | None] = mapped_column(String(127))
    mnt_entered_at: Mapped[datetime | None]
    mnt_expected_end: Mapped[datetime | None]
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    attention_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeviceLabelRow(Base):
    """Labels live in their own table so that selectors become indexed SQL, on both databases."""

    __tablename__ = "device_labels"
    __table_args__ = (Index("ix_device_labels_key_value", "key", "value"),)

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class DeviceGroupRow(Base):
    __tablename__ = "device_groups"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    fabrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    prefix: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(127))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_device_id", "device_id"),
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_at", "at"),
    )

    # Assigned from audit_head in the appending transaction, never by the database.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(127))
    action: Mapped[str] = mapped_column(String(63))
    via: Mapped[str] = mapped_column(String(16))
    fabric: Mapped[str | None] = mapped_column(String(63))
    device: Mapped[str | None] = mapped_column(String(63))
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket: Mapped[str | None] = mapped_column(String(127))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """A single row holding the chain's last link. Writers lock it, which serialises appends
    (PostgreSQL ``FOR UPDATE``; SQLite has one writer anyway) and lets verification notice a
    deletion at the end of the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class JobRow(Base):
    """A job: one workflow on one device. ``lease_epoch`` is the fencing token: it grows at
    every claim, and every write a worker makes for the job checks it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_device_id", "device_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(63))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    fabric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fabrics.id", ondelete="CASCADE"))
    mode: Mapped[str | None] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    current_step: Mapped[str | None] = mapped_column(String(63))
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(127))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(127))
    lease_epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_expires_at: Mapped[datetime | None]


class JobStepRow(Base):
    __tablename__ = "job_steps"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expected_s: Mapped[float] = mapped_column(Float)
    timeout_s: Mapped[float] = mapped_column(Float)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class JobEventRow(Base):
    """A log line of a job. ``id`` orders every event of every job, so a live stream can
    resume after the last id it saw (SSE ``Last-Event-ID``)."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(8))
    step: Mapped[str | None] = mapped_column(String(63))
    device: Mapped[str | None] = mapped_column(String(63))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DeviceLockRow(Base):
    """At most one active job per device: the primary key is the device."""

    __tablename__ = "device_locks"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    acquired_at: Mapped[datetime]


class FleetMapRow(Base):
    """One published epoch of a fabric's fleet map. The primary key is the claim: two
    replicas ticking the same epoch cannot both insert it."""

    __tablename__ = "fleet_maps"

    fabric_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("fabrics.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(127))
    # Device name -> ONLINE | MAINTENANCE | OFFLINE.
    members: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    digest: Mapped[str] = mapped_column(String(64))


# Campaigns ----------------------------------------------------------------------------------


class CampaignRow(Base):
    """A rolling campaign. Its driver holds a lease like a job's: ``lease_epoch`` fences every
    write the driver makes, so only one replica drives a campaign at a time."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state", "state"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    fabric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fabrics.id", ondelete="RESTRICT"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(24))
    # The plan made when the campaign started: waves, lower bound, canary.
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(127))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(127))
    lease_epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_expires_at: Mapped[datetime | None]


class CampaignDeviceRow(Base):
    """One device of a campaign, in plan order (``position``): its state, the job it waits
    on, and what its action did."""

    __tablename__ = "campaign_devices"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(63))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    after: Mapped[list[str]] = mapped_column(JSON, default=list)
    wave: Mapped[int] = mapped_column(Integer)
    canary: Mapped[bool] = mapped_column(Boolean, default=False)
    # Its duration next to its peers' in earlier campaigns (``domain.campaign_pace``).
    pace: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(24))
    step: Mapped[str | None] = mapped_column(String(63))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    started_at: Mapped[datetime | None]
    phase_started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    soak_until: Mapped[datetime | None]
    hang_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(String(127))
    action_ran: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class CampaignEventRow(Base):
    """The campaign's log: its own decisions and each action's captured output."""

    __tablename__ = "campaign_events"
    __table_args__ = (Index("ix_campaign_events_campaign_id_id", "campaign_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(8))
    device: Mapped[str | None] = mapped_column(String(63))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Named actions ------------------------------------------------------------------------------


class NamedActionRow(Base):
    """A program a campaign may run, defined by an admin (``domain.named_actions``)."""

    __tablename__ = "named_actions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    command: Mapped[list[str]] = mapped_column(JSON, default=list)
    undo: Mapped[list[str]] = mapped_column(JSON, default=list)
    timeout_s: Mapped[float] = mapped_column(Float)
    # Fabric names it may run on; empty: every fabric.
    fabrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(127))
    created_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(127))
    updated_at: Mapped[datetime]
