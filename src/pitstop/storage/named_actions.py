"""The named-action repository: the catalogue of programs campaigns may run.

Writes are an admin's (the API checks the role); each one is audited in the same
transaction by the caller. A campaign copies what it uses when it starts, so nothing here
needs to know which campaigns refer to an action.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.errors import Conflict, NotFound
from pitstop.domain.named_actions import NamedAction
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.tables import NamedActionRow


def _action(row: NamedActionRow) -> NamedAction:
    return NamedAction(
        name=row.name,
        command=tuple(row.command or ()),
        undo=tuple(row.undo or ()),
        timeout_s=float(row.timeout_s),
        fabrics=tuple(row.fabrics or ()),
        description=row.description or "",
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_by=row.updated_by,
        updated_at=as_utc(row.updated_at),
    )


class NamedActionRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    async def all(self) -> list[NamedAction]:
        rows = await self._s.scalars(select(NamedActionRow).order_by(NamedActionRow.name))
        return [_action(r) for r in rows]

    async def find(self, name: str) -> NamedAction | None:
        row = await self._row(name, lock=False)
        return _action(row) if row is not None else None

    async def get(self, name: str) -> NamedAction:
        found = await self.find(name)
        if found is None:
            raise NotFound(f"no action is named {name!r}", kind="action", ref=name)
        return found

    async def create(self, action: NamedAction, *, actor: str) -> NamedAction:
        now = self._clock()
        self._s.add(
            NamedActionRow(
                id=uuid.uuid4(),
                name=action.name,
                command=list(action.command),
                undo=list(action.undo),
                timeout_s=action.timeout_s,
                fabrics=list(action.fabrics),
                description=action.description,
                created_by=actor,
                created_at=now,
                updated_by=actor,
                updated_at=now,
            )
        )
        try:
            await self._s.flush()
        except IntegrityError as exc:
            raise Conflict(f"an action named {action.name!r} already exists") from exc
        return await self.get(action.name)

    async def update(self, action: NamedAction, *, actor: str) -> NamedAction:
        """Replace the definition of the action of that name (locked while it is read)."""
        row = await self._row(action.name, lock=True)
        if row is None:
            raise NotFound(f"no action is named {action.name!r}", kind="action", ref=action.name)
        row.command = list(action.command)
        row.undo = list(action.undo)
        row.timeout_s = action.timeout_s
        row.fabrics = list(action.fabrics)
        row.description = action.description
        row.updated_by = actor
        row.updated_at = self._clock()
        await self._s.flush()
        return _action(row)

    async def delete(self, name: str) -> NamedAction:
        found = await self._row(name, lock=True)
        if found is None:
            raise NotFound(f"no action is named {name!r}", kind="action", ref=name)
        gone = _action(found)
        await self._s.execute(delete(NamedActionRow).where(NamedActionRow.id == found.id))
        return gone

    async def _row(self, name: str, *, lock: bool) -> NamedActionRow | None:
        q = select(NamedActionRow).where(NamedActionRow.name == name)
        if lock:
            q = q.with_for_update()
        return (await self._s.scalars(q)).one_or_none()
