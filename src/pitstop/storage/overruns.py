"""Maintenance that outlived its ``expected_end``: finding it and flagging it once.

Flagging sets ``needs_attention`` with a reason (shown by ``device list``) and appends a
``device.overrun`` audit row, the event operators and alerting read. A device already flagged
is left alone, so several replicas running the watchdog raise one event per overrun; the flag
clears when the device is back in service (``DeviceRepository.change_status``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.lifecycle import DeviceStatus
from pitstop.storage.audit_log import AuditLog
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.tables import DeviceRow, FabricRow

# Out of service on purpose; error already needs attention for its own reason.
WATCHED = (DeviceStatus.DRAINING, DeviceStatus.MAINTENANCE, DeviceStatus.UNDRAINING)


@dataclass(frozen=True, slots=True)
class Overrun:
    device_id: uuid.UUID
    device: str
    fabric: str
    status: DeviceStatus
    expected_end: datetime
    overdue_s: float


def overrun_reason(expected_end: datetime) -> str:
    return f"maintenance overran its expected end ({expected_end.isoformat()})"


class OverrunRepository:
    def __init__(self, session: AsyncSession, clock: Clock, audit: AuditLog) -> None:
        self._s = session
        self._clock = clock
        self._audit = audit

    async def flag_overdue(self, *, actor: str) -> list[Overrun]:
        """Flag every device whose maintenance is past its expected end and not yet flagged."""
        now = self._clock()
        rows = (
            await self._s.execute(
                select(DeviceRow, FabricRow.name)
                .join(FabricRow, FabricRow.id == DeviceRow.fabric_id)
                .where(
                    DeviceRow.status.in_([s.value for s in WATCHED]),
                    DeviceRow.mnt_expected_end.is_not(None),
                    DeviceRow.mnt_expected_end < now,
                    DeviceRow.needs_attention.is_(False),
                )
                .order_by(DeviceRow.mnt_expected_end, DeviceRow.name)
                .with_for_update(of=DeviceRow, skip_locked=True)
            )
        ).all()
        flagged: list[Overrun] = []
        for row, fabric in rows:
            end = as_utc(row.mnt_expected_end)
            assert end is not None
            reason = overrun_reason(end)
            done = await self._s.execute(
                update(DeviceRow)
                .where(and_(DeviceRow.id == row.id, DeviceRow.needs_attention.is_(False)))
                .values(
                    needs_attention=True,
                    attention_reason=reason,
                    version=row.version + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 1) != 1:
                continue
            over = Overrun(
                row.id, row.name, fabric, DeviceStatus(row.status), end, (now - end).total_seconds()
            )
            await self._audit.append(
                actor=actor,
                action="device.overrun",
                via="engine",
                fabric=fabric,
                device=row.name,
                device_id=row.id,
                reason=reason,
                details={
                    "status": row.status,
                    "expected_end": end.isoformat(),
                    "overdue_s": round(over.overdue_s, 3),
                },
            )
            flagged.append(over)
        return flagged
