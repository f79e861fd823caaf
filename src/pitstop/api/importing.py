"""Bulk import of an inventory: check every reference against the database, then write.

An import is all or nothing: every row is validated (``import_files.py``, in a child process),
and every reference checked here, before anything is written, and the writes share one
transaction. A refusal lists each bad row and field, so an operator can fix the whole file in
one pass.
"""

from __future__ import annotations

import uuid

from pitstop.api.import_files import FabricPlan, Parsed
from pitstop.api.schemas import ImportResult
from pitstop.domain.errors import FieldError, Forbidden, ValidationFailed
from pitstop.domain.inventory import Budget
from pitstop.domain.roles import Actor, Via
from pitstop.storage.store import Unit


class _Errors:
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors

    def add(self, where: str, message: str, row: int | None = None) -> None:
        self.errors.append(FieldError(where, message, row))


async def run_import(
    u: Unit,
    parsed: Parsed,
    *,
    dry_run: bool,
    actor: Actor,
    via: Via,
    create_fabrics: bool = True,
) -> ImportResult:
    """Validate everything, then write everything in the caller's transaction."""
    parsed.raise_refusal()
    plans = parsed.plans
    c = _Errors(list(parsed.errors))
    existing = {f.name: f for f in await u.fabrics.all()}
    seen_fabrics: set[str] = set()
    resolved: list[tuple[FabricPlan, uuid.UUID | None, dict[str, uuid.UUID]]] = []
    for plan in plans:
        name = plan.spec.name
        if name in seen_fabrics:
            c.add(plan.where + ".name", f"fabric {name!r} appears twice")
        seen_fabrics.add(name)
        f = existing.get(name)
        actor.ensure_may_write(name)
        if f is None and actor.fabrics:
            raise Forbidden("a token scoped to fabrics may not create fabrics", fabric=name)
        if f is None and not (create_fabrics and plan.where != "fabric"):
            c.add("fabric", f"fabric {name!r} does not exist")
        known_groups = await u.fabrics.group_names(f.id) if f else {}
        taken = await u.devices.names_in_fabric(f.id) if f else set()
        new_groups: set[str] = set()
        for where, g in plan.groups:
            if g.name in known_groups or g.name in new_groups:
                c.add(where + ".name", f"group {g.name!r} already exists in {name}")
            new_groups.add(g.name)
        names: set[str] = set()
        for where, row, d in plan.devices:
            prefix = where + "." if where else ""
            if d.name in taken:
                c.add(prefix + "name", f"device {d.name!r} already exists in {name}", row)
            elif d.name in names:
                c.add(prefix + "name", f"device {d.name!r} appears twice in the file", row)
            names.add(d.name)
            for gname in d.groups:
                if gname not in known_groups and gname not in new_groups:
                    c.add(
                        prefix + "groups",
                        f"group {gname!r} is neither in {name} nor in the file",
                        row,
                    )
        resolved.append((plan, f.id if f else None, dict(known_groups)))
    if c.errors:
        c.errors.sort(key=lambda e: (e.row or 0, e.field))
        bad_rows = {e.row for e in c.errors if e.row is not None}
        raise ValidationFailed(
            f"import refused, nothing was written: {len(c.errors)} problems"
            + (f" in {len(bad_rows)} rows" if bad_rows else ""),
            c.errors,
        )
    result = ImportResult(
        dry_run=dry_run, fabrics_created=[], groups_created=[], devices_created=[]
    )
    for plan, fabric_id, group_ids in resolved:
        fname = plan.spec.name
        if fabric_id is None:
            result.fabrics_created.append(fname)
        for _, g in plan.groups:
            result.groups_created.append(f"{fname}/{g.name}")
        for _, _, d in plan.devices:
            result.devices_created.append(f"{fname}/{d.name}")
        if dry_run:
            continue
        if fabric_id is None:
            created = await u.fabrics.create(
                name=fname,
                description=plan.spec.description,
                labels=plan.spec.labels,
                parameters=plan.spec.parameters,
            )
            fabric_id = created.id
            await u.audit.append(actor=actor.name, action="fabric.create", via=via, fabric=fname)
        for _, g in plan.groups:
            grp = await u.fabrics.create_group(
                fabric_id,
                name=g.name,
                max_unavailable=Budget.parse(g.max_unavailable),
                description=g.description,
            )
            group_ids[grp.name] = grp.id
            await u.audit.append(
                actor=actor.name,
                action="group.create",
                via=via,
                fabric=fname,
                details={"group": grp.name, "max_unavailable": str(grp.max_unavailable)},
            )
        for _, _, d in plan.devices:
            await u.devices.create(
                fabric_id=fabric_id,
                fabric=fname,
                spec=d.to_spec(),
                group_ids=group_ids,
                actor=actor,
                via=via,
            )
    return result
