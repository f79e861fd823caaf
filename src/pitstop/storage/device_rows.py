"""The device row, both ways: the ``Device`` it holds, and the columns a status change writes.
Shared by the repository (``devices``), the workers' job start (``leases``) and the engine's
status steps (``transitions``), so a column is mapped in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pitstop.domain.errors import Conflict
from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.storage.clock import as_utc
from pitstop.storage.tables import DeviceRow


def status_values(
    current: DeviceStatus,
    target: DeviceStatus,
    *,
    now: datetime,
    actor: str,
    reason: str | None,
    ticket: str | None,
    expected_end: datetime | None,
    attention_reason: str | None,
    version: int,
    entered_at: datetime | None,
) -> dict[str, Any]:
    """The device columns a status change writes (shared with the engine's ``transitions``)."""
    values: dict[str, Any] = {
        "status": target.value,
        "status_reason": reason,
        "status_changed_by": actor,
        "status_changed_at": now,
        "version": version + 1,
        "updated_at": now,
    }
    if target is DeviceStatus.DRAINING and current is DeviceStatus.ACTIVATED:
        values.update(
            mnt_reason=reason,
            mnt_ticket=ticket,
            mnt_requested_by=actor,
            mnt_entered_at=None,
            mnt_expected_end=expected_end,
        )
    if target is DeviceStatus.MAINTENANCE and entered_at is None:
        values["mnt_entered_at"] = now
    if target is DeviceStatus.ACTIVATED:
        values.update(
            mnt_reason=None,
            mnt_ticket=None,
            mnt_requested_by=None,
            mnt_entered_at=None,
            mnt_expected_end=None,
        )
    if target is DeviceStatus.ERROR:
        values.update(needs_attention=True, attention_reason=attention_reason or reason)
    elif current is DeviceStatus.ERROR or target is DeviceStatus.ACTIVATED:
        # An admin verified the device before recovering it; and back in service, an
        # overrun the watchdog flagged is over too.
        values.update(needs_attention=False, attention_reason=None)
    return values


def check_version(name: str, version: int, expected: int | None) -> None:
    """Refuse a write made on top of a version other than the one the caller read."""
    if expected is not None and expected != version:
        raise Conflict(
            f"device {name!r} is at version {version}, not {expected}; read it again",
            current_version=version,
            expected_version=expected,
        )


def device_from_row(
    row: DeviceRow, fabric: str, labels: dict[str, str], groups: list[str]
) -> Device:
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created and updated
    return Device(
        id=row.id,
        fabric_id=row.fabric_id,
        fabric=fabric,
        name=row.name,
        role=row.role,
        driver=row.driver,
        connection=Connection(row.host, row.port, row.credentials_ref, dict(row.options or {})),
        labels=labels,
        groups=tuple(groups),
        status=DeviceStatus(row.status),
        status_reason=row.status_reason,
        status_changed_by=row.status_changed_by,
        status_changed_at=as_utc(row.status_changed_at),
        maintenance=MaintenanceInfo(
            row.mnt_reason,
            row.mnt_ticket,
            row.mnt_requested_by,
            as_utc(row.mnt_entered_at),
            as_utc(row.mnt_expected_end),
        ),
        needs_attention=row.needs_attention,
        attention_reason=row.attention_reason,
        version=row.version,
        created_at=created,
        updated_at=updated,
    )
