"""Named actions: the programs a campaign may run, each defined by an admin (ADR 0013).

An action is a name, an argv template (``domain.argv_templates``), a timeout, an optional
undo argv and the fabrics it may run on (none listed: every fabric). A campaign refers to
one by name (``action: {type: run, name: upgrade-os}``) and never carries a command of its
own, so defining what runs on the server is an admin's act, and an operator only picks from
what was defined. ``check_action`` validates a definition completely; ``action_reasons``
says why a campaign may not use the action it names; ``snapshot`` is what a campaign keeps
of its action when it starts, so later edits do not change a running campaign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pitstop.domain.argv_templates import Field, parse_element, template_problems
from pitstop.domain.campaigns import Action, ActionKind
from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.names import name_problem

MAX_ARGS = 64
MAX_ARG_CHARS = 4096
MAX_DESCRIPTION = 2000
MAX_FABRICS = 100
MAX_TIMEOUT_S = 86_400.0  # a day: an action that needs longer is a campaign of its own
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class NamedAction:
    name: str
    command: tuple[str, ...]
    undo: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    fabrics: tuple[str, ...] = ()  # empty: every fabric
    description: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    updated_by: str = ""
    updated_at: datetime | None = None

    def allowed_on(self, fabric: str) -> bool:
        return not self.fabrics or fabric in self.fabrics


def _argv_problems(argv: Sequence[str], where: str, *, required: bool) -> list[FieldError]:
    if not argv:
        needed = FieldError(where, "needs at least the program, e.g. [upgrade-os, '{host}']")
        return [needed] if required else []
    errs: list[FieldError] = []
    if len(argv) > MAX_ARGS:
        errs.append(FieldError(where, f"at most {MAX_ARGS} arguments (got {len(argv)})"))
    for i, element in enumerate(argv):
        if not element:
            errs.append(FieldError(f"{where}[{i}]", "must not be empty"))
        elif len(element) > MAX_ARG_CHARS:
            errs.append(FieldError(f"{where}[{i}]", f"at most {MAX_ARG_CHARS} characters"))
    errs += [FieldError(f"{where}[{i}]", why) for i, why in template_problems(argv)]
    if not errs and any(isinstance(p, Field) for p in parse_element(argv[0])):
        # The program is fixed by whoever defines the action, never by a device's fields.
        errs.append(FieldError(f"{where}[0]", "the program may not contain placeholders"))
    return errs


def check_action(action: NamedAction) -> NamedAction:
    """The action as given, or ``ValidationFailed`` naming every bad field."""
    errs: list[FieldError] = []
    problem = name_problem(action.name)
    if problem:
        errs.append(FieldError("name", problem))
    errs += _argv_problems(action.command, "command", required=True)
    errs += _argv_problems(action.undo, "undo", required=False)
    t = action.timeout_s
    if not (isinstance(t, int | float) and math.isfinite(t) and 1 <= t <= MAX_TIMEOUT_S):
        errs.append(FieldError("timeout_s", f"must be a number from 1 to {MAX_TIMEOUT_S:g}"))
    if len(action.fabrics) > MAX_FABRICS:
        errs.append(FieldError("fabrics", f"at most {MAX_FABRICS} fabrics"))
    for i, fabric in enumerate(action.fabrics):
        problem = name_problem(fabric)
        if problem:
            errs.append(FieldError(f"fabrics[{i}]", problem))
    if len(action.description) > MAX_DESCRIPTION:
        errs.append(FieldError("description", f"at most {MAX_DESCRIPTION} characters"))
    if errs:
        raise ValidationFailed(f"action definition has {len(errs)} problem(s)", errs)
    return replace(action, fabrics=tuple(sorted(set(action.fabrics))))


def action_reasons(action: Action, *, fabric: str, defined: NamedAction | None) -> list[str]:
    """Why a campaign on ``fabric`` may not use ``action``; empty when it may.

    ``defined`` is the named action of that name as stored now (None: there is none).
    """
    if action.inline:
        return [
            f"{where}: a campaign may not carry a command, undo or timeout of its own; an admin "
            "defines a named action (pitstop action create NAME ...) and the campaign refers "
            "to it: action: {type: run, name: NAME}"
            for where in action.inline
        ]
    if action.kind is ActionKind.COMMAND:
        return [
            "action.type: command actions are no longer run; an admin defines a named action "
            "and the campaign refers to it: action: {type: run, name: NAME}"
        ]
    if action.kind is not ActionKind.RUN:
        return []
    if defined is None:
        return [f"action.name: no action is named {action.name!r} (see pitstop action list)"]
    if not defined.allowed_on(fabric):
        return [
            f"action.name: action {action.name!r} may run only on "
            f"{', '.join(defined.fabrics)}, not on fabric {fabric!r}"
        ]
    return []


def snapshot(action: Action, defined: NamedAction) -> Action:
    """The campaign's action with the named action's argv, undo and timeout copied in."""
    return replace(
        action,
        command=defined.command,
        undo=defined.undo,
        timeout_s=defined.timeout_s,
        inline=(),
    )
