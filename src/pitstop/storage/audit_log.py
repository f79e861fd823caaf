"""The append-only audit log, chained by hash (see ``pitstop.domain.audit``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.audit import GENESIS, AuditEntry, ChainProblem, entry_hash, verify_chain
from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.limits import MAX_INT64
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.pages import Page, decode_cursor, encode_cursor
from pitstop.storage.tables import AuditHeadRow, AuditRow

HEAD_ID = 1


def _entry(row: AuditRow) -> AuditEntry:
    at = as_utc(row.at)
    assert at is not None
    return AuditEntry(
        seq=row.seq,
        at=at,
        actor=row.actor,
        action=row.action,
        via=row.via,
        fabric=row.fabric,
        device=row.device,
        device_id=row.device_id,
        from_status=row.from_status,
        to_status=row.to_status,
        reason=row.reason,
        ticket=row.ticket,
        job_id=row.job_id,
        details=row.details or {},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    async def _head(self) -> AuditHeadRow:
        # FOR UPDATE serialises appends on PostgreSQL so the chain never forks.
        head = await self._s.scalar(
            select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID).with_for_update()
        )
        if head is None:
            # Migration 0001 creates it; its absence means the schema was not migrated.
            raise RuntimeError("the audit_head row is missing; run `pitstop db upgrade`")
        return head

    async def append(
        self,
        *,
        actor: str,
        action: str,
        via: str,
        fabric: str | None = None,
        device: str | None = None,
        device_id: uuid.UUID | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        reason: str | None = None,
        ticket: str | None = None,
        job_id: uuid.UUID | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        head = await self._head()
        entry = AuditEntry(
            seq=head.seq + 1,
            at=self._clock(),
            actor=actor,
            action=action,
            via=via,
            fabric=fabric,
            device=device,
            device_id=device_id,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            ticket=ticket,
            job_id=job_id,
            details=dict(details or {}),
            prev_hash=head.hash,
        )
        entry = replace(entry, hash=entry_hash(entry))
        self._s.add(
            AuditRow(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                via=entry.via,
                fabric=entry.fabric,
                device=entry.device,
                device_id=entry.device_id,
                from_status=entry.from_status,
                to_status=entry.to_status,
                reason=entry.reason,
                ticket=entry.ticket,
                job_id=entry.job_id,
                details=dict(entry.details),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        head.seq, head.hash = entry.seq, entry.hash
        await self._s.flush()
        return entry

    async def query(
        self,
        *,
        device_id: uuid.UUID | None = None,
        device: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        fabric: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        """Newest first."""
        q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit + 1)
        if device_id is not None:
            q = q.where(AuditRow.device_id == device_id)
        if device is not None:
            q = q.where(AuditRow.device == device)
        if actor is not None:
            q = q.where(AuditRow.actor == actor)
        if action is not None:
            q = q.where(AuditRow.action == action)
        if fabric is not None:
            q = q.where(AuditRow.fabric == fabric)
        if since is not None:
            q = q.where(AuditRow.at >= since)
        if cursor:
            (last,) = decode_cursor(cursor, 1)
            # A cursor comes back from the client: only a sequence number a row could have.
            if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= MAX_INT64:
                raise ValidationFailed(
                    "bad cursor", [FieldError("cursor", "not a cursor from this listing")]
                )
            q = q.where(AuditRow.seq < last)
        rows = list((await self._s.scalars(q)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([_entry(r) for r in rows], encode_cursor([rows[-1].seq]) if more else None)

    async def verify(self) -> tuple[int, list[ChainProblem]]:
        """Walk the whole chain; returns how many rows were checked and every problem found."""
        head = await self._s.scalar(select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID))
        head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
        entries: list[AuditEntry] = []
        result = await self._s.stream_scalars(select(AuditRow).order_by(AuditRow.seq))
        async for row in result:
            entries.append(_entry(row))
        return len(entries), verify_chain(entries, head_seq=head_seq, head_hash=head_hash)
