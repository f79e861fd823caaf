"""Campaign definitions: a good one parses to what it says, a bad one names every bad field."""

from __future__ import annotations

import pytest

from pitstop.domain.campaigns import (
    ActionKind,
    FailurePolicy,
    parse_spec,
    spec_document,
)
from pitstop.domain.errors import ValidationFailed

GOOD = {
    "name": "upgrade-leaves",
    "fabric": "dc1",
    "selector": {"roles": ["leaf", "spine"], "labels": "vendor=frr,!frozen"},
    "order": ["leaf before spine"],
    "dependencies": ["leaf1 before leaf2", {"before": "leaf3", "after": "leaf4"}],
    "concurrency": 4,
    "action": {"type": "run", "name": "upgrade-os"},
    "expected_durations": {"enter_s": 30, "action_s": 600, "exit_s": 30},
    "failure_policy": "continue up to 10%",
    "canary": 1,
    "soak_s": 120,
}


def test_a_full_definition_parses_and_round_trips() -> None:
    spec = parse_spec(GOOD)
    assert spec.order == (("leaf", "spine"),)
    assert spec.dependencies == (("leaf1", "leaf2"), ("leaf3", "leaf4"))
    assert spec.action.kind is ActionKind.RUN
    assert (spec.action.name, spec.action.command, spec.action.inline) == ("upgrade-os", (), ())
    assert spec.failure_policy == FailurePolicy(10, percent=True)
    assert spec.selector.matches(role="leaf", groups=(), labels={"vendor": "frr"})
    assert not spec.selector.matches(role="leaf", groups=(), labels={"vendor": "frr", "frozen": ""})
    assert not spec.selector.matches(role="border", groups=(), labels={"vendor": "frr"})
    assert parse_spec(spec_document(spec), stored=True) == spec


def test_every_bad_field_is_named_at_once() -> None:
    bad = {
        "name": "Bad Name",
        "fabric": "dc1",
        "selector": {"rolez": ["leaf"]},
        "order": ["leaf after spine"],
        "concurrency": 0,
        "action": {"type": "run", "shell": True},
        "failure_policy": "sometimes",
        "canary": -1,
        "colour": "blue",
    }
    with pytest.raises(ValidationFailed) as info:
        parse_spec(bad)
    fields = {e.field for e in info.value.errors}
    assert fields >= {
        "name",
        "selector.rolez",
        "selector",
        "order[0]",
        "concurrency",
        "action.name",
        "action.shell",
        "failure_policy",
        "canary",
        "colour",
    }


@pytest.mark.parametrize(
    ("text", "total", "allowed"),
    [("stop", 10, 0), ("continue up to 2", 10, 2), ("continue up to 25%", 10, 2)],
)
def test_failure_policy_allows_n_or_a_share(text: str, total: int, allowed: int) -> None:
    policy = parse_spec({**GOOD, "failure_policy": text}).failure_policy
    assert policy.allowed(total) == allowed
    assert not policy.tripped(failures=allowed, total=total)
    assert policy.tripped(failures=allowed + 1, total=total)


def test_await_approval_takes_no_name() -> None:
    spec = parse_spec({**GOOD, "action": "await_approval"})
    assert spec.action.kind is ActionKind.AWAIT_APPROVAL
    with pytest.raises(ValidationFailed) as info:
        parse_spec({**GOOD, "action": {"type": "await_approval", "name": "upgrade-os"}})
    assert [e.field for e in info.value.errors] == ["action.name"]


@pytest.mark.parametrize(
    ("action", "inline"),
    [
        ({"type": "command", "command": ["sh", "-c", "id"]}, ("action.type", "action.command")),
        ({"type": "run", "name": "upgrade-os", "command": ["sh"]}, ("action.command",)),
        ({"type": "run", "name": "upgrade-os", "timeout_s": 5}, ("action.timeout_s",)),
        ({"type": "none", "undo": ["sh"]}, ("action.undo",)),
    ],
)
def test_a_definition_never_carries_a_command_of_its_own(
    action: dict[str, object], inline: tuple[str, ...]
) -> None:
    spec = parse_spec({**GOOD, "action": action})
    # Marked, never kept: the campaign is refused naming these fields (named_actions).
    assert (spec.action.inline, spec.action.command, spec.action.undo) == (inline, (), ())


def test_a_stored_campaign_keeps_its_actions_snapshot() -> None:
    stored = {
        **GOOD,
        "action": {
            "type": "run",
            "name": "upgrade-os",
            "command": ["up", "{name}"],
            "timeout_s": 9,
        },
    }
    action = parse_spec(stored, stored=True).action
    assert (action.command, action.timeout_s, action.inline) == (("up", "{name}"), 9.0, ())


def test_advanced_parameters_out_of_bounds_are_refused_when_the_campaign_is_defined() -> None:
    raw = {**GOOD, "advanced_parameters": {"drain": {"timeout_s": float("inf")}}}
    with pytest.raises(ValidationFailed) as info:
        parse_spec(raw)
    assert [e.field for e in info.value.errors] == ["advanced_parameters.drain.timeout_s"]
