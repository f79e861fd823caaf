"""The advanced_parameters form, generated from the parameters' JSON schema.

The schema (``domain.parameters.json_schema``) is walked into sections and fields, each named
by its dotted path (``checks.cpu_idle.min_pct``), so a new parameter appears in the form with
no template change. A submitted form is read back into a nested mapping; only the values that
differ from the fabric's effective defaults become the job's overrides, so a job records what
the operator changed and nothing else. Validation is the domain's own (``resolve``); its
field errors are shown next to the field they name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pitstop.domain.errors import ValidationFailed
from pitstop.domain.parameters import json_schema, resolve, set_path


@dataclass(frozen=True, slots=True)
class Field:
    path: str
    label: str
    kind: str  # bool, number, integer, text, choices, hidden
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False


@dataclass(slots=True)
class Section:
    path: str
    title: str
    help: str = ""
    fields: list[Field] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


_UNITS = (("_per_s", " (per second)"), ("_pct", " (%)"), ("_pps", " (pps)"), ("_s", " (s)"))
_WORDS = {"bgp": "BGP", "cpu": "CPU"}


def _title(name: str) -> str:
    for suffix, unit in _UNITS:
        if name.endswith(suffix) and name != suffix:
            return _title(name.removesuffix(suffix)) + unit
    words = [_WORDS.get(w, w) for w in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _deref(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: Mapping[str, Any] = defs[ref.rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _field(path: str, name: str, node: Mapping[str, Any], defs: Mapping[str, Any]) -> Field:
    help_text = str(node.get("description", ""))
    label = _title(name)
    if "const" in node:
        return Field(path, label, "hidden", help_text)
    variants = [_deref(v, defs) for v in node.get("anyOf", [])]
    nullable = any(v.get("type") == "null" for v in variants)
    typed = next((v for v in variants if v.get("type") != "null"), node)
    kind = typed.get("type")
    if kind == "boolean":
        return Field(path, label, "bool", help_text)
    if kind in ("number", "integer"):
        return Field(
            path,
            label,
            str(kind),
            help_text,
            minimum=typed.get("minimum"),
            maximum=typed.get("maximum"),
            exclusive_minimum=typed.get("exclusiveMinimum"),
            nullable=nullable,
        )
    if kind == "array":
        items = _deref(typed.get("items", {}), defs)
        if "enum" in items:
            return Field(path, label, "choices", help_text, choices=tuple(items["enum"]))
    return Field(path, label, "text", help_text, nullable=nullable)


def _section(path: str, title: str, node: Mapping[str, Any], defs: Mapping[str, Any]) -> Section:
    section = Section(path, title, str(node.get("description", "")))
    for name, prop in node.get("properties", {}).items():
        child = _deref(prop, defs)
        sub = f"{path}.{name}" if path else name
        if child.get("type") == "object" and "properties" in child:
            section.sections.append(_section(sub, _title(name), child, defs))
        else:
            section.fields.append(_field(sub, name, child, defs))
    return section


def form_sections() -> Section:
    schema = json_schema()
    return _section("", "Advanced parameters", schema, schema.get("$defs", {}))


def all_fields(section: Section) -> list[Field]:
    out = list(section.fields)
    for sub in section.sections:
        out += all_fields(sub)
    return out


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def effective(fabric_defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Built-in defaults, then the fabric's, then the overrides, as flat paths. Overrides
    that no longer validate (an older job's) are shown as they were, not dropped."""
    try:
        base = resolve(dict(fabric_defaults)).model_dump(mode="json")
    except ValidationFailed:
        base = resolve().model_dump(mode="json")
    flat = flatten(base)
    flat.update(flatten(overrides))
    return flat


@dataclass(frozen=True, slots=True)
class Parsed:
    values: dict[str, Any]  # flat path -> the value as typed, for showing the form again
    overrides: dict[str, Any]  # nested, only what differs from the fabric's effective defaults
    errors: dict[str, str]  # flat path -> message


def _number(raw: str, f: Field) -> tuple[Any, str | None]:
    text = raw.strip()
    if text == "":
        return (None, None) if f.nullable else (raw, "enter a number")
    try:
        value: float | int = int(text) if f.kind == "integer" else float(text)
    except ValueError:
        return raw, "enter a whole number" if f.kind == "integer" else "enter a number"
    return value, None


def parse(form: Mapping[str, Any], fabric_defaults: Mapping[str, Any]) -> Parsed:
    """Read every schema field from a submitted form and validate the result."""
    base = effective(fabric_defaults, {})
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in all_fields(form_sections()):
        name = f"p.{f.path}"
        if f.kind == "hidden":
            continue
        if f.kind == "bool":
            values[f.path] = form.get(name) == "on"
        elif f.kind == "choices":
            getlist = getattr(form, "getlist", None)
            picked = list(getlist(name)) if getlist else list(form.get(name) or [])
            values[f.path] = [c for c in f.choices if c in picked]
        elif f.kind in ("number", "integer"):
            value, problem = _number(str(form.get(name, "")), f)
            values[f.path] = value
            if problem:
                errors[f.path] = problem
        else:
            text = str(form.get(name, "")).strip()
            values[f.path] = text or None if f.nullable else text
    overrides: dict[str, Any] = {}
    for path, value in values.items():
        if path not in errors and value != base.get(path):
            set_path(overrides, path, value)
    if not errors:
        try:
            resolve(dict(fabric_defaults), overrides)
        except ValidationFailed as exc:
            errors.update(field_errors(exc))
    return Parsed(values=values, overrides=overrides, errors=errors)


def field_errors(exc: ValidationFailed) -> dict[str, str]:
    """The domain's field errors keyed by the form's paths; ``_form`` for the rest."""
    out: dict[str, str] = {}
    for e in exc.errors:
        out[e.field.removeprefix("advanced_parameters.")] = e.message
    if not out:
        out["_form"] = exc.detail
    return out
