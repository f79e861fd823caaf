"""Reading an inventory file (YAML or CSV) into validated plans, within bounds.

This is the part of an import that costs CPU and memory in proportion to the file, so it is
pure (text in, plain picklable data out) and runs in a child process (``import_pool.py``):
parsing a 4 MiB file builds millions of objects, and even on a thread the garbage collector's
passes over them would stall the server's event loop for seconds.

The bounds are checked before the expensive steps: YAML events are read first with libyaml's
parser, counting nesting depth (at most ``MAX_DEPTH``) and nodes (aliases count as the nodes
they repeat, so a "billion laughs" file is refused before it is built); then the rows are
counted against the server's row limit before any is validated.

YAML takes either a list of devices (for the fabric named in the request), or a mapping with
``groups`` and ``devices``, or ``fabrics:`` — a list of fabrics, each with its own ``groups``
and ``devices``, created when they do not exist yet. CSV has a header row and one device per
line; ``groups`` is ``;``-separated and ``labels`` is ``k=v;k2=v2``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pitstop.api.problems import clean_message
from pitstop.api.schemas import DeviceIn, FabricIn, GroupIn
from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.limits import MAX_DEPTH, MAX_YAML_NODES_PER_ROW

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


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _too_big(problem: str, event: Any) -> ValidationFailed:
    mark = getattr(event, "start_mark", None) or getattr(event, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    return ValidationFailed(problem, [FieldError("document", problem, line)])


def _check_events(text: str, *, max_nodes: int) -> None:
    """Walk the YAML events (libyaml does the parsing) and refuse the document before it is
    built when it nests deeper than ``MAX_DEPTH`` or would hold more than ``max_nodes``
    nodes once its aliases are expanded."""
    depth = nodes = 0
    open_at: list[tuple[str | None, int]] = []
    sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _OPEN):
            depth += 1
            nodes += 1
            if depth > MAX_DEPTH:
                raise _too_big(f"the document nests deeper than {MAX_DEPTH} levels", event)
            open_at.append((event.anchor, nodes))
        elif isinstance(event, _CLOSE):
            depth -= 1
            anchor, start = open_at.pop()
            if anchor:
                sizes[anchor] = nodes - start + 1
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(event.anchor or "", 1)
        if nodes > max_nodes:
            raise _too_big(
                f"the document holds more than {max_nodes} values (aliases counted as what "
                "they repeat); split the file",
                event,
            )


def _parse_yaml(text: str, fabric: str | None, c: _Collector, *, max_rows: int) -> list[FabricPlan]:
    try:
        _check_events(text, max_nodes=max_rows * MAX_YAML_NODES_PER_ROW + 1000)
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "nesting depth" in problem:
            # libyaml's own guard (1,000 flow levels), met while it scans ahead of our count.
            raise _too_big(f"the document nests deeper than {MAX_DEPTH} levels", exc) from exc
        raise ValidationFailed(
            "the file is not valid YAML", [FieldError("document", problem, line)]
        ) from exc
    if isinstance(doc, list):
        doc = {"devices": doc}
    if not isinstance(doc, dict):
        raise ValidationFailed(
            "expected a list of devices or a mapping",
            [FieldError("document", "expected a list of devices, or groups/devices/fabrics")],
        )
    _check_rows(doc, max_rows)
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


def _too_many(max_rows: int, what: str, counted: int) -> ValidationFailed:
    return ValidationFailed(
        f"an import holds at most {max_rows} {what} (PITSTOP_MAX_IMPORT_ROWS); this file has "
        f"{counted}: split it (per fabric, or a list of devices in parts; each part is atomic)",
        [FieldError(what, f"more than {max_rows}")],
    )


def _check_rows(doc: dict[Any, Any], max_rows: int) -> None:
    sections = [doc]
    if isinstance(doc.get("fabrics"), list):
        sections += [f for f in doc["fabrics"] if isinstance(f, dict)]
        if len(doc["fabrics"]) > max_rows:
            raise _too_many(max_rows, "fabrics", len(doc["fabrics"]))
    for what in ("devices", "groups"):
        counted = sum(len(s[what]) for s in sections if isinstance(s.get(what), list))
        if counted > max_rows:
            raise _too_many(max_rows, what, counted)


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


def _parse_csv(text: str, fabric: str | None, c: _Collector, *, max_rows: int) -> list[FabricPlan]:
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
    try:
        rows = list(_bounded(reader, max_rows))
    except csv.Error as exc:
        raise ValidationFailed(
            "the file is not valid CSV", [FieldError("document", str(exc), reader.line_num)]
        ) from exc
    for line, raw in rows:
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


def _bounded(
    reader: csv.DictReader[str], max_rows: int
) -> Iterator[tuple[int, dict[str | Any, str | Any]]]:
    for count, raw in enumerate(reader, start=1):
        if count > max_rows:
            raise _too_many(max_rows, "devices", count)
        yield reader.line_num, raw


@dataclass
class Parsed:
    """What a file held: its plans and the problems found in its rows, or the one refusal
    that stopped the reading (bad YAML, too deep, too many rows). Plain data, so it crosses
    from the child process as it is."""

    plans: list[FabricPlan] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    refusal: str | None = None

    def raise_refusal(self) -> None:
        if self.refusal is not None:
            raise ValidationFailed(self.refusal, self.errors)


def parse_file(text: str, *, fmt: str, fabric: str | None, max_rows: int) -> Parsed:
    """Read and validate a whole file, every row; never raises for what the file holds."""
    c = _Collector()
    try:
        if fmt == "yaml":
            plans = _parse_yaml(text, fabric, c, max_rows=max_rows)
        elif fmt == "csv":
            plans = _parse_csv(text, fabric, c, max_rows=max_rows)
        else:
            raise ValidationFailed("unknown format", [FieldError("format", "yaml or csv")])
    except ValidationFailed as exc:
        return Parsed(errors=exc.errors, refusal=exc.detail)
    return Parsed(plans, c.errors)
