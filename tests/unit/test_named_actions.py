"""Named actions: what an admin may define, and when a campaign may use one."""

from __future__ import annotations

import math

import pytest

from pitstop.domain.campaigns import Action, ActionKind, parse_spec
from pitstop.domain.errors import ValidationFailed
from pitstop.domain.named_actions import NamedAction, action_reasons, check_action, snapshot

UPGRADE = NamedAction(
    name="upgrade-os",
    command=("/usr/local/bin/upgrade-os", "{host}", "--rack={labels[rack]}"),
    undo=("/usr/local/bin/downgrade-os", "{host}"),
    timeout_s=900,
    fabrics=("dc2", "dc1", "dc1"),
)


def _fields(bad: NamedAction) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        check_action(bad)
    return [e.field for e in info.value.errors]


def test_a_good_definition_is_kept_with_its_fabrics_sorted_once() -> None:
    assert check_action(UPGRADE).fabrics == ("dc1", "dc2")


def test_every_bad_field_of_a_definition_is_named() -> None:
    bad = NamedAction(
        name="Upgrade OS",
        command=("{labels[tool]}", "{labels.__class__}"),
        undo=("down", "{0}"),
        timeout_s=math.inf,
        fabrics=("DC 1",),
        description="x" * 3000,
    )
    assert _fields(bad) == [
        "name",
        "command[1]",
        "undo[1]",
        "timeout_s",
        "fabrics[0]",
        "description",
    ]


def test_the_program_itself_is_never_a_placeholder() -> None:
    assert _fields(NamedAction(name="a", command=("{labels[tool]}", "x"))) == ["command[0]"]
    assert _fields(NamedAction(name="a", command=())) == ["command"]
    assert _fields(NamedAction(name="a", command=("up",), timeout_s=0)) == ["timeout_s"]


def test_a_campaign_may_use_only_a_defined_action_allowed_on_its_fabric() -> None:
    run = Action(ActionKind.RUN, "upgrade-os")
    assert action_reasons(run, fabric="dc1", defined=check_action(UPGRADE)) == []
    assert action_reasons(run, fabric="dc3", defined=check_action(UPGRADE)) == [
        "action.name: action 'upgrade-os' may run only on dc1, dc2, not on fabric 'dc3'"
    ]
    [missing] = action_reasons(run, fabric="dc1", defined=None)
    assert missing.startswith("action.name: no action is named 'upgrade-os'")
    anywhere = NamedAction(name="upgrade-os", command=("up",))
    assert action_reasons(run, fabric="anything", defined=anywhere) == []


def test_an_inline_command_is_refused_naming_the_field_and_the_way_out() -> None:
    raw = {
        "name": "c",
        "fabric": "dc1",
        "selector": {"roles": ["leaf"]},
        "action": {"type": "command", "command": ["sh", "-c", "id"]},
    }
    reasons = action_reasons(parse_spec(raw).action, fabric="dc1", defined=None)
    assert [r.split(":")[0] for r in reasons] == ["action.type", "action.command"]
    assert all("define" in r and "{type: run, name: NAME}" in r for r in reasons)
    # A campaign stored before named actions existed is refused at start the same way.
    legacy = parse_spec(raw, stored=True).action
    assert legacy.command == ("sh", "-c", "id")
    assert action_reasons(legacy, fabric="dc1", defined=None)[0].startswith("action.type:")


def test_a_snapshot_copies_the_definition_into_the_campaign() -> None:
    taken = snapshot(Action(ActionKind.RUN, "upgrade-os"), UPGRADE)
    assert (taken.name, taken.command, taken.undo, taken.timeout_s) == (
        "upgrade-os",
        UPGRADE.command,
        UPGRADE.undo,
        900,
    )
