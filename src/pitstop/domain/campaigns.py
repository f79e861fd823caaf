"""Campaign definitions and states: what a rolling maintenance across many devices is.

A definition (YAML file or API body) names its devices by a *selector* (roles, labels,
groups) that is resolved only when the campaign starts: a campaign never hard-codes the
scalable entities it rolls over. ``parse_spec`` validates a definition completely and reports
every bad field at once; nothing is stored for a bad one.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.limits import MAX_INT64
from pitstop.domain.names import name_problem
from pitstop.domain.parameters import resolve
from pitstop.domain.selectors import Term, parse_selector


class CampaignState(enum.StrEnum):
    CREATED = "created"
    VALIDATING = "validating"
    VALIDATION_FAILED = "validation_failed"
    RUNNING = "running"
    PAUSED = "paused"
    # The failure policy tripped: nothing new starts; devices under way finish.
    STOPPING = "stopping"
    FAILED = "failed"
    ABORTING = "aborting"
    ABORTED = "aborted"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


# States in which the campaign driver has work to do.
DRIVEN: frozenset[CampaignState] = frozenset(
    {
        CampaignState.VALIDATING,
        CampaignState.RUNNING,
        CampaignState.PAUSED,
        CampaignState.STOPPING,
        CampaignState.ABORTING,
        CampaignState.ROLLING_BACK,
    }
)
FINISHED: frozenset[CampaignState] = frozenset(
    {
        CampaignState.VALIDATION_FAILED,
        CampaignState.FAILED,
        CampaignState.ABORTED,
        CampaignState.SUCCEEDED,
        CampaignState.ROLLED_BACK,
    }
)


class DeviceState(enum.StrEnum):
    PENDING = "pending"
    ENTERING = "entering"
    ACTION = "action"
    AWAITING_APPROVAL = "awaiting_approval"
    EXITING = "exiting"
    SOAKING = "soaking"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


# A device in one of these holds a concurrency slot (and, until it is back, its groups' slots).
IN_FLIGHT: frozenset[DeviceState] = frozenset(
    {
        DeviceState.ENTERING,
        DeviceState.ACTION,
        DeviceState.AWAITING_APPROVAL,
        DeviceState.EXITING,
        DeviceState.SOAKING,
        DeviceState.ROLLING_BACK,
    }
)
SETTLED: frozenset[DeviceState] = frozenset(
    {DeviceState.DONE, DeviceState.FAILED, DeviceState.SKIPPED, DeviceState.ROLLED_BACK}
)


class ActionKind(enum.StrEnum):
    NONE = "none"
    # An action an admin defined (``domain.named_actions``), referred to by name.
    RUN = "run"
    AWAIT_APPROVAL = "await_approval"
    # A command carried by the definition itself. Refused in every new definition; read only
    # from campaigns stored before named actions existed, so one already running finishes.
    COMMAND = "command"


RUN_KEYS = frozenset({"command", "undo", "timeout_s"})  # what a named action's snapshot holds


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind = ActionKind.NONE
    # The named action's name, for ``run``.
    name: str = ""
    # argv templates (``domain.argv_templates``), never a shell. For ``run`` they are the named
    # action's, copied into the campaign when it starts; empty before that.
    command: tuple[str, ...] = ()
    # Run on rollback for a device whose command ran: how the action's change is undone.
    undo: tuple[str, ...] = ()
    timeout_s: float = 600.0
    # Fields of a definition that only an admin-defined action may carry; the campaign is
    # refused naming them (``named_actions.action_reasons``).
    inline: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """Stop at the first failure (``tolerate`` 0), or continue up to N or X % failures."""

    tolerate: int = 0
    percent: bool = False

    def allowed(self, total: int) -> int:
        return math.floor(total * self.tolerate / 100) if self.percent else self.tolerate

    def tripped(self, *, failures: int, total: int) -> bool:
        return failures > self.allowed(total)

    def __str__(self) -> str:
        if self.tolerate == 0:
            return "stop"
        return f"continue up to {self.tolerate}{'%' if self.percent else ''} failures"


@dataclass(frozen=True, slots=True)
class Selector:
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    labels: tuple[Term, ...] = ()
    labels_text: str = ""

    def matches(self, *, role: str, groups: tuple[str, ...], labels: Mapping[str, str]) -> bool:
        if self.roles and role not in self.roles:
            return False
        if self.groups and not set(groups) & set(self.groups):
            return False
        return all(t.matches(labels) for t in self.labels)


@dataclass(frozen=True, slots=True)
class Expected:
    """Expected seconds per phase; a phase past twice its expectation raises a warning."""

    enter_s: float = 60.0
    action_s: float = 300.0
    exit_s: float = 60.0


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    fabric: str
    selector: Selector
    order: tuple[tuple[str, str], ...] = ()  # roles
    dependencies: tuple[tuple[str, str], ...] = ()  # devices
    concurrency: int = 1
    action: Action = field(default_factory=Action)
    expected: Expected = field(default_factory=Expected)
    failure_policy: FailurePolicy = field(default_factory=FailurePolicy)
    canary: int = 0
    soak_s: float = 0.0
    reason: str = ""
    advanced_parameters: Mapping[str, Any] = field(default_factory=dict)


_BEFORE = re.compile(r"\s*(\S+)\s+before\s+(\S+)\s*")
_POLICY = re.compile(r"\s*continue(?:\s+up\s+to)?\s+([0-9]{1,12})\s*(%?)\s*")
KNOWN = {
    "name",
    "fabric",
    "selector",
    "order",
    "dependencies",
    "concurrency",
    "action",
    "expected_durations",
    "failure_policy",
    "canary",
    "soak_s",
    "reason",
    "advanced_parameters",
}


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(FieldError(where, message))


def _pairs(raw: Any, where: str, errs: _Errors) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errs.add(where, "must be a list of 'A before B'")
        return ()
    out: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and set(item) == {"before", "after"}:
            out.append((str(item["before"]), str(item["after"])))
            continue
        m = _BEFORE.fullmatch(str(item)) if isinstance(item, str) else None
        if m is None:
            errs.add(f"{where}[{i}]", f"expected 'A before B', got {item!r}")
        else:
            out.append((m.group(1), m.group(2)))
    return tuple(out)


def _number(raw: Any, where: str, errs: _Errors, *, default: float, integer: bool) -> float:
    if raw is None:
        return default
    ok = isinstance(raw, int) if integer else isinstance(raw, int | float)
    if isinstance(raw, bool) or not ok or not 0 <= raw <= MAX_INT64:
        errs.add(
            where,
            f"must be a {'whole' if integer else 'finite'} number from 0 to {MAX_INT64}",
        )
        return default
    return float(raw)


def _strings(raw: Any, where: str, errs: _Errors) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        errs.add(where, "must be a list of non-empty strings")
        return ()
    return tuple(raw)


def _selector(raw: Any, errs: _Errors) -> Selector:
    if not isinstance(raw, Mapping):
        errs.add("selector", "must be a mapping with roles, labels and/or groups")
        return Selector()
    for key in set(raw) - {"roles", "labels", "groups"}:
        errs.add(f"selector.{key}", "unknown key (expected roles, labels, groups)")
    labels_text = raw.get("labels") or ""
    if isinstance(labels_text, Mapping):
        labels_text = ",".join(f"{k}={v}" for k, v in labels_text.items())
    terms: list[Term] = []
    try:
        terms = parse_selector(str(labels_text), field="selector.labels")
    except ValidationFailed as exc:
        errs.items += exc.errors
    sel = Selector(
        roles=_strings(raw.get("roles"), "selector.roles", errs),
        groups=_strings(raw.get("groups"), "selector.groups", errs),
        labels=tuple(terms),
        labels_text=str(labels_text),
    )
    if not (sel.roles or sel.groups or sel.labels):
        errs.add("selector", "select by at least one of roles, labels or groups")
    return sel


def _action(raw: Any, errs: _Errors, *, stored: bool) -> Action:
    if raw is None:
        return Action()
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        errs.add("action", "must be none, await_approval or {type: run, name: ACTION}")
        return Action()
    try:
        kind = ActionKind(str(raw.get("type", "none")))
    except ValueError:
        errs.add("action.type", "must be one of none, run, await_approval")
        return Action()
    # A stored campaign holds its named action's snapshot; a definition may not.
    inline = [] if stored else sorted(f"action.{k}" for k in RUN_KEYS & set(raw))
    if kind is ActionKind.COMMAND and not stored:
        inline.insert(0, "action.type")
    for key in sorted(set(raw) - {"type", "name"} - RUN_KEYS):
        errs.add(f"action.{key}", "unknown key (expected type and, for run, name)")
    name = str(raw.get("name") or "")
    if kind is ActionKind.RUN:
        problem = name_problem(name)
        if problem:
            errs.add("action.name", f"a run action names an action defined by an admin: {problem}")
    elif "name" in raw:
        errs.add("action.name", f"only a run action takes a name, not {kind.value}")
    if inline:
        return Action(kind, name, inline=tuple(inline))
    command = _strings(raw.get("command"), "action.command", errs)
    undo = _strings(raw.get("undo"), "action.undo", errs)
    timeout = _number(raw.get("timeout_s"), "action.timeout_s", errs, default=600, integer=False)
    return Action(kind, name, command, undo, timeout)


def _policy(raw: Any, errs: _Errors) -> FailurePolicy:
    if raw is None or raw == "stop":
        return FailurePolicy()
    m = _POLICY.fullmatch(str(raw)) if isinstance(raw, str) else None
    if isinstance(raw, Mapping) and "continue" in raw:
        m = _POLICY.fullmatch(f"continue {raw['continue']}")
    if m is None:
        errs.add("failure_policy", "expected stop, 'continue up to N' or 'continue up to X%'")
        return FailurePolicy()
    value, pct = int(m.group(1)), bool(m.group(2))
    if pct and value > 100:
        errs.add("failure_policy", "a percentage must be at most 100%")
    return FailurePolicy(value, pct)


def parse_spec(raw: Any, *, stored: bool = False) -> CampaignSpec:
    """A validated definition, or ``ValidationFailed`` naming every bad field.

    ``stored`` reads a campaign as storage keeps it, with its named action's snapshot; a
    definition from a person is read with ``stored`` false, so it can never carry a command.
    """
    errs = _Errors()
    if not isinstance(raw, Mapping):
        raise ValidationFailed("a campaign is a mapping", [FieldError("", "not a mapping")])
    for key in sorted(set(raw) - KNOWN):
        errs.add(key, "unknown field")
    name, fabric = str(raw.get("name") or ""), str(raw.get("fabric") or "")
    for where, value in (("name", name), ("fabric", fabric)):
        problem = name_problem(value)
        if problem:
            errs.add(where, problem)
    selector = _selector(raw.get("selector"), errs)
    concurrency = int(_number(raw.get("concurrency"), "concurrency", errs, default=1, integer=True))
    if concurrency < 1:
        errs.add("concurrency", "must be at least 1")
    exp_raw = raw.get("expected_durations") or {}
    if not isinstance(exp_raw, Mapping):
        errs.add("expected_durations", "must be a mapping of enter_s, action_s, exit_s")
        exp_raw = {}
    base = Expected()
    expected = Expected(
        *(
            _number(exp_raw.get(k), f"expected_durations.{k}", errs, default=d, integer=False)
            for k, d in (
                ("enter_s", base.enter_s),
                ("action_s", base.action_s),
                ("exit_s", base.exit_s),
            )
        )
    )
    params = raw.get("advanced_parameters") or {}
    if not isinstance(params, Mapping):
        errs.add("advanced_parameters", "must be a mapping")
        params = {}
    else:
        # The jobs' own bounds, refused now rather than when the first device starts.
        try:
            resolve(dict(params))
        except ValidationFailed as exc:
            for bad in exc.errors:
                errs.add(bad.field, bad.message)
    spec = CampaignSpec(
        name=name,
        fabric=fabric,
        selector=selector,
        order=_pairs(raw.get("order"), "order", errs),
        dependencies=_pairs(raw.get("dependencies"), "dependencies", errs),
        concurrency=max(concurrency, 1),
        action=_action(raw.get("action"), errs, stored=stored),
        expected=expected,
        failure_policy=_policy(raw.get("failure_policy"), errs),
        canary=int(_number(raw.get("canary"), "canary", errs, default=0, integer=True)),
        soak_s=_number(raw.get("soak_s"), "soak_s", errs, default=0, integer=False),
        reason=str(raw.get("reason") or f"campaign {name}"),
        advanced_parameters=dict(params),
    )
    if errs.items:
        raise ValidationFailed(f"campaign definition has {len(errs.items)} problem(s)", errs.items)
    return spec


def spec_document(spec: CampaignSpec) -> dict[str, Any]:
    """The definition as the plain mapping ``parse_spec(stored=True)`` reads (what storage
    keeps)."""
    action: dict[str, Any] = {"type": spec.action.kind.value}
    if spec.action.name:
        action["name"] = spec.action.name
    if spec.action.command:
        action["command"] = list(spec.action.command)
        action["timeout_s"] = spec.action.timeout_s
    if spec.action.undo:
        action["undo"] = list(spec.action.undo)
    policy = spec.failure_policy
    selector: dict[str, Any] = {}
    if spec.selector.roles:
        selector["roles"] = list(spec.selector.roles)
    if spec.selector.groups:
        selector["groups"] = list(spec.selector.groups)
    if spec.selector.labels_text:
        selector["labels"] = spec.selector.labels_text
    return {
        "name": spec.name,
        "fabric": spec.fabric,
        "selector": selector,
        "order": [f"{a} before {b}" for a, b in spec.order],
        "dependencies": [f"{a} before {b}" for a, b in spec.dependencies],
        "concurrency": spec.concurrency,
        "action": action,
        "expected_durations": {
            "enter_s": spec.expected.enter_s,
            "action_s": spec.expected.action_s,
            "exit_s": spec.expected.exit_s,
        },
        "failure_policy": "stop"
        if policy.tolerate == 0
        else f"continue up to {policy.tolerate}{'%' if policy.percent else ''}",
        "canary": spec.canary,
        "soak_s": spec.soak_s,
        "reason": spec.reason,
        "advanced_parameters": dict(spec.advanced_parameters),
    }
