"""Bulk import of an inventory from YAML or CSV.

An import is all or nothing: every row is validated, and every reference checked, before
anything is written, and the writes share one transaction. A refusal lists each bad row and
field, so an operator can fix the whole file in one pass.

YAML takes either a list of devices (for the fabric named in the request), or a mapping with
``groups`` and ``devices``, or ``fabrics:`` — a list of fabrics, each with its own ``groups``
and ``devices``, created when they do not exist yet. CSV has a header row and one device per
line; ``groups`` is ``;``-separated and ``labels`` is ``k=v;k2=v2``.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pitstop.api.problems import clean_message
from pitstop.api.schemas import DeviceIn, FabricIn, GroupIn, ImportResult
from pitstop.domain.errors import FieldError, Forbidden, ValidationFailed
from pitstop.domain.inventory import Budget
from pitstop.domain.roles import Actor, Via
from pitstop.storage.store import Unit

M = TypeVar("M", bound=BaseModel)

CSV_COLUMNS = (
    "name",
    "role",
    "driver",
    "host",
    "port",
    "credentials_ref",
    "groups",
    "labels",
    "status",
)


@dataclass
class FabricPlan:
    spec: FabricIn
    where: str
    groups: list[tuple[str, GroupIn]] = field(default_factory=list)
    devices: list[tuple[str, int | None, DeviceIn]] = field(default_factory=list)


class _Collector:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, where: str, message: str, row: int | None = None) -> None:
        self.errors.append(FieldError(where, message, row))

    def model(self, cls: type[M], data: Any, where: str, row: int | None = None) -> M | None:
        if not isinstance(data, dict):
            self.add(where, f"expected a mapping, got {type(data).__name__}", row)
            return None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            for e in exc.errors():
                loc = ".".join(str(p) for p in e["loc"])
                self.add(f"{where}.{loc}" if loc else where, clean_message(e["msg"]), row)
            return None


def _parse_yaml(text: str, fabric: str | None, c: _Collector) -> list[FabricPlan]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ValidationFailed(
            "the file is not valid YAML", [FieldError("document", str(exc).splitlines()[0], line)]
        ) from exc
    if isinstance(doc, list):
        doc = {"devices": doc}
    if not isinstance(doc, dict):
        raise ValidationFailed(
            "expected a list of devices or a mapping",
            [FieldError("document", "expected a list of devices, or groups/devices/fabrics")],
        )
    unknown = set(doc) - {"fabrics", "groups", "devices"}
    for key in sorted(unknown):
        c.add(key, "unknown section; expected fabrics, groups or devices")
    plans: list[FabricPlan] = []
    if "fabrics" in doc:
        if "groups" in doc or "devices" in doc:
            c.add("fabrics", "give either fabrics: or top-level groups:/devices:, not both")
        items = doc["fabrics"] if isinstance(doc["fabrics"], list) else []
        if not isinstance(doc["fabrics"], list):
            c.add("fabrics", "expected a list")
        for i, item in enumerate(items):
            where = f"fabrics[{i}]"
            if not isinstance(item, dict):
                c.add(where, "expected a mapping")
                continue
            head = {k: v for k, v in item.items() if k not in ("groups", "devices")}
            spec = c.model(FabricIn, head, where)
            plan = FabricPlan(
                spec or FabricIn.model_construct(name="", labels={}, parameters={}), where
            )
            _fill(plan, item.get("groups"), item.get("devices"), where + ".", c)
            if spec is not None:
                plans.append(plan)
        return plans
    if not fabric:
        c.add("fabric", "name the fabric to import into, or use a fabrics: section")
        return plans
    plan = FabricPlan(
        FabricIn.model_construct(name=fabric, description="", labels={}, parameters={}), "fabric"
    )
    _fill(plan, doc.get("groups"), doc.get("devices"), "", c)
    plans.append(plan)
    return plans


def _fill(plan: FabricPlan, groups: Any, devices: Any, prefix: str, c: _Collector) -> None:
    for section, value in (("groups", groups), ("devices", devices)):
        if value is not None and not isinstance(value, list):
            c.add(prefix + section, "expected a list")
    for i, g in enumerate(groups if isinstance(groups, list) else []):
        where = f"{prefix}groups[{i}]"
        spec = c.model(GroupIn, g, where)
        if spec is not None:
            plan.groups.append((where, spec))
    for i, d in enumerate(devices if isinstance(devices, list) else []):
        where = f"{prefix}devices[{i}]"
        dev = c.model(DeviceIn, d, where, row=i + 1)
        if dev is not None:
            plan.devices.append((where, i + 1, dev))


def _parse_csv(text: str, fabric: str | None, c: _Collector) -> list[FabricPlan]:
    if not fabric:
        raise ValidationFailed(
            "name the fabric to import into", [FieldError("fabric", "required for CSV imports")]
        )
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if "name" not in header or "role" not in header:
        raise ValidationFailed(
            "the CSV header needs at least name and role",
            [FieldError("header", f"columns: {', '.join(CSV_COLUMNS)}", 1)],
        )
    if unknown:
        raise ValidationFailed(
            f"unknown CSV columns: {', '.join(unknown)}",
            [FieldError(h, f"unknown column; known: {', '.join(CSV_COLUMNS)}", 1) for h in unknown],
        )
    plan = FabricPlan(
        FabricIn.model_construct(name=fabric, description="", labels={}, parameters={}), "fabric"
    )
    for raw in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            c.add("row", "more fields than the header has", line)
            continue
        data: dict[str, Any] = {"name": row.get("name", ""), "role": row.get("role", "")}
        if row.get("driver"):
            data["driver"] = row["driver"]
        if row.get("status"):
            data["status"] = row["status"]
        conn: dict[str, Any] = {}
        if row.get("host"):
            conn["host"] = row["host"]
        if row.get("port"):
            conn["port"] = row["port"]
        if row.get("credentials_ref"):
            conn["credentials_ref"] = row["credentials_ref"]
        if conn:
            data["connection"] = conn
        if row.get("groups"):
            data["groups"] = [g.strip() for g in row["groups"].split(";") if g.strip()]
        if row.get("labels"):
            labels: dict[str, str] = {}
            for pair in row["labels"].split(";"):
                if not pair.strip():
                    continue
                if "=" not in pair:
                    c.add("labels", f"expected k=v, got {pair.strip()!r}", line)
                    continue
                k, _, v = pair.partition("=")
                labels[k.strip()] = v.strip()
            data["labels"] = labels
        spec = c.model(DeviceIn, data, "", row=line)
        if spec is not None:
            plan.devices.append(("", line, spec))
    # CSV errors name the column, not a JSON path.
    for e in c.errors:
        e.field = e.field.lstrip(".").removeprefix("connection.") or e.field
    return [plan]


def parse(text: str, *, fmt: str, fabric: str | None) -> tuple[list[FabricPlan], _Collector]:
    c = _Collector()
    if fmt == "yaml":
        return _parse_yaml(text, fabric, c), c
    if fmt == "csv":
        return _parse_csv(text, fabric, c), c
    raise ValidationFailed("unknown format", [FieldError("format", "yaml or csv")])


async def run_import(
    u: Unit,
    text: str,
    *,
    fmt: str,
    fabric: str | None,
    dry_run: bool,
    actor: Actor,
    via: Via,
    create_fabrics: bool = True,
) -> ImportResult:
    """Validate everything, then write everything in the caller's transaction."""
    plans, c = parse(text, fmt=fmt, fabric=fabric)
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
