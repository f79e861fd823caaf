"""Label selectors: ``k=v,k2!=v,k3,!k4``, as operators know them from Kubernetes.

Parsing is pure; storage turns the parsed terms into SQL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.limits import MAX_SELECTOR_TERMS


class Op(enum.StrEnum):
    EQ = "="
    NE = "!="
    EXISTS = "exists"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class Term:
    key: str
    op: Op
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op is Op.EQ:
            return labels.get(self.key) == self.value
        if self.op is Op.NE:
            return labels.get(self.key) != self.value
        if self.op is Op.EXISTS:
            return self.key in labels
        return self.key not in labels


def parse_selector(text: str, *, field: str = "selector") -> list[Term]:
    """Parse a selector; a bad term raises ``ValidationFailed`` naming it. Each term becomes a
    clause of a query, so a selector holds at most ``MAX_SELECTOR_TERMS``."""
    parts = text.split(",")
    if sum(1 for p in parts if p.strip()) > MAX_SELECTOR_TERMS:
        raise ValidationFailed(
            f"a selector may hold at most {MAX_SELECTOR_TERMS} terms",
            [FieldError(field, f"more than {MAX_SELECTOR_TERMS} terms")],
        )
    terms: list[Term] = []
    for raw in parts:
        part = raw.strip()
        if not part:
            continue
        if "!=" in part:
            key, _, value = part.partition("!=")
            op = Op.NE
        elif "==" in part:
            key, _, value = part.partition("==")
            op = Op.EQ
        elif "=" in part:
            key, _, value = part.partition("=")
            op = Op.EQ
        elif part.startswith("!"):
            key, value, op = part[1:], "", Op.ABSENT
        else:
            key, value, op = part, "", Op.EXISTS
        key, value = key.strip(), value.strip()
        if not key or any(c in "=!," or c.isspace() for c in key):
            raise ValidationFailed(
                f"bad selector term {part!r}",
                [FieldError(field, f"bad term {part!r}: expected k=v, k!=v, k or !k")],
            )
        terms.append(Term(key, op, value))
    return terms


def matches(terms: list[Term], labels: Mapping[str, str]) -> bool:
    return all(t.matches(labels) for t in terms)
