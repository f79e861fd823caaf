"""Argv templates of named actions: a small language of plain placeholders, parsed here.

A template element is text with placeholders: ``{name}``, ``{fabric}``, ``{role}``,
``{host}``, ``{port}``, ``{campaign}`` and ``{labels[KEY]}``; ``{{`` and ``}}`` stand for
literal braces. Nothing else is a placeholder. Python's ``str.format`` is deliberately not
used: its field syntax reaches attributes and items of the objects it is given
(``{labels.__class__}``, ``{name.__class__.__mro__}``), applies conversions and format
specs, and takes positional fields. Here a template is parsed once, when an admin defines
the action, and a bad placeholder is refused then, with its element and text named; at run
time the parsed pieces are filled from plain strings only, so nothing but a device's field
values can appear in an argument.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FIELDS: tuple[str, ...] = ("name", "fabric", "role", "host", "port", "campaign")
HELP = "use {name}, {fabric}, {role}, {host}, {port}, {campaign} or {labels[KEY]}"

_LABEL_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?")


class TemplateError(ValueError):
    """A template element that is not allowed; the message names the element and why."""


class MissingLabel(ValueError):
    """A device lacks a label its action's template uses."""

    def __init__(self, label: str) -> None:
        super().__init__(f"the device has no label {label!r}, which the action's argv uses")
        self.label = label


@dataclass(frozen=True, slots=True)
class Field:
    """One placeholder: a device field, or ``labels`` with the label's key."""

    name: str
    label: str | None = None


Piece = str | Field


def _placeholder(text: str) -> Field:
    if text in FIELDS:
        return Field(text)
    if text.startswith("labels[") and text.endswith("]"):
        key = text[len("labels[") : -1]
        if _LABEL_KEY.fullmatch(key):
            return Field("labels", key)
    raise TemplateError(f"placeholder {{{text}}} is not allowed: {HELP}")


def parse_element(element: str) -> tuple[Piece, ...]:
    """The pieces of one argv element, or ``TemplateError`` naming the bad placeholder."""
    pieces: list[Piece] = []
    text: list[str] = []
    i, n = 0, len(element)
    while i < n:
        ch = element[i]
        if ch in "{}" and element.startswith(ch * 2, i):
            text.append(ch)
            i += 2
        elif ch == "}":
            raise TemplateError("a lone '}': write '}}' for a literal brace")
        elif ch == "{":
            end = element.find("}", i + 1)
            if end < 0:
                raise TemplateError("an unclosed '{': write '{{' for a literal brace")
            inner = element[i + 1 : end]
            if "{" in inner:
                raise TemplateError(f"placeholder {{{inner}}} is not allowed: {HELP}")
            if text:
                pieces.append("".join(text))
                text = []
            pieces.append(_placeholder(inner))
            i = end + 1
        else:
            text.append(ch)
            i += 1
    if text:
        pieces.append("".join(text))
    return tuple(pieces)


def template_problems(argv: Sequence[str]) -> list[tuple[int, str]]:
    """``(index, why)`` for every element of ``argv`` that does not parse."""
    problems: list[tuple[int, str]] = []
    for i, element in enumerate(argv):
        try:
            parse_element(element)
        except TemplateError as exc:
            problems.append((i, str(exc)))
    return problems


@dataclass(frozen=True, slots=True)
class DeviceFields:
    """The values a template may use: plain strings, never objects."""

    name: str
    fabric: str
    role: str
    host: str
    port: str
    campaign: str
    labels: Mapping[str, str]

    def value(self, f: Field) -> str:
        if f.label is not None:
            if f.label not in self.labels:
                raise MissingLabel(f.label)
            return str(self.labels[f.label])
        return str(getattr(self, f.name))


def render(argv: Sequence[str], fields: DeviceFields) -> list[str]:
    """The argv for one device; ``TemplateError`` or ``MissingLabel`` naming the element."""
    out: list[str] = []
    for i, element in enumerate(argv):
        try:
            pieces = parse_element(element)
        except TemplateError as exc:
            raise TemplateError(f"argument {i} {element!r}: {exc}") from exc
        out.append("".join(p if isinstance(p, str) else fields.value(p) for p in pieces))
    return out
