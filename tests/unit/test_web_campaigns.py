"""The campaign page's parts that need no server: which controls and approvals a user is
offered in each state, the definition summary, the progress bar's parts, and a live stream
that counts what the page already shows as sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from pitstop.domain.campaign_records import Campaign, CampaignDevice
from pitstop.domain.campaign_window import Progress
from pitstop.domain.campaigns import CampaignState, DeviceState
from pitstop.domain.roles import Actor, Role
from pitstop.web import live
from pitstop.web.campaigns import definition_facts, offered, segments
from pitstop.web.context import Viewer

C = CampaignState
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _campaign(state: CampaignState, fabric: str = "dc1") -> Campaign:
    return Campaign(
        id=uuid.uuid4(),
        name="roll",
        fabric_id=uuid.uuid4(),
        fabric=fabric,
        spec={},
        state=state,
        plan={},
        error=None,
        created_by="alice",
        created_at=NOW,
        started_at=None,
        finished_at=None,
        updated_at=NOW,
        lease_owner=None,
        lease_epoch=0,
        lease_expires_at=None,
    )


def _device(name: str, state: DeviceState, approved_by: str | None = None) -> CampaignDevice:
    return CampaignDevice(
        position=0,
        device_id=uuid.uuid4(),
        name=name,
        role="leaf",
        groups=(),
        after=(),
        wave=0,
        canary=False,
        state=state,
        approved_by=approved_by,
    )


def _viewer(role: Role, fabrics: frozenset[str] = frozenset()) -> Viewer:
    return Viewer(actor=Actor(name="someone", role=role, fabrics=fabrics), csrf="x")


@pytest.mark.parametrize(
    ("state", "verbs"),
    [
        (C.CREATED, ["start", "abort"]),
        (C.VALIDATING, ["abort"]),
        (C.RUNNING, ["pause", "abort"]),
        (C.PAUSED, ["resume", "abort", "rollback"]),
        (C.STOPPING, ["abort"]),
        (C.FAILED, ["rollback"]),
        (C.ABORTED, ["rollback"]),
        (C.ABORTING, []),
        (C.ROLLING_BACK, []),
        (C.SUCCEEDED, []),
        (C.ROLLED_BACK, []),
        (C.VALIDATION_FAILED, []),
    ],
)
def test_an_operator_is_offered_the_controls_of_the_state(
    state: CampaignState, verbs: list[str]
) -> None:
    offer = offered(_viewer(Role.OPERATOR), _campaign(state), [])
    assert [c.verb for c in offer.controls] == verbs
    assert all(
        bool(c.confirm) == (c.verb in ("start", "abort", "rollback")) for c in offer.controls
    )


def test_approve_is_offered_for_waiting_devices_not_yet_approved() -> None:
    devices = [
        _device("a", DeviceState.AWAITING_APPROVAL),
        _device("b", DeviceState.AWAITING_APPROVAL, approved_by="bob"),
        _device("c", DeviceState.ENTERING),
    ]
    offer = offered(_viewer(Role.ADMIN), _campaign(C.RUNNING), devices)
    assert offer.approve == {"a"} and offer.may_write


def test_viewers_and_other_fabrics_tokens_are_offered_nothing() -> None:
    devices = [_device("a", DeviceState.AWAITING_APPROVAL)]
    for who in (_viewer(Role.VIEWER), _viewer(Role.OPERATOR, frozenset({"storage"}))):
        offer = offered(who, _campaign(C.PAUSED), devices)
        assert (offer.controls, offer.approve, offer.may_write) == ((), frozenset(), False)


def test_the_definition_reads_as_the_page_shows_it() -> None:
    spec: dict[str, Any] = {
        "selector": {"roles": ["leaf"], "labels": "rack=r3"},
        "concurrency": 2,
        "action": {
            "type": "run",
            "name": "upgrade-os",
            "command": ["upgrade", "{name}"],
            "timeout_s": 90.0,
        },
        "failure_policy": "continue up to 10%",
        "canary": 1,
        "soak_s": 30.0,
        "order": ["leaf before spine"],
        "dependencies": [],
        "expected_durations": {"enter_s": 60.0},
        "advanced_parameters": {},
        "reason": "upgrade",
    }
    facts = dict(definition_facts(spec, {"wave_count": 3, "lower_bound": {"value": 2}}))
    assert facts == {
        "Selector": "roles leaf · labels rack=r3",
        "Concurrency": "2",
        "Action": "run upgrade-os: upgrade {name} · timeout 1 min 30 s",
        "Failure policy": "continue up to 10%",
        "Canary": "1 first, alone",
        "Soak": "30.0 s per device",
        "Role order": "leaf before spine",
        "Expected": "enter 1 min 00 s",
        "Plan": "3 waves (lower bound 2)",
        "Reason": "upgrade",
    }
    quiet = dict(definition_facts({"selector": {"groups": ["g"]}, "action": {"type": "none"}}, {}))
    assert quiet["Selector"] == "groups g"
    assert quiet["Canary"] == quiet["Soak"] == "none"
    assert quiet["Action"].startswith("none")


def test_the_progress_bar_parts_add_up() -> None:
    p = Progress(total=8, done=3, failed=1, skipped=0, in_flight=2, pending=2, eta_s=10)
    parts = {s.key: (s.count, s.share) for s in segments(p)}
    assert parts == {
        "done": (3, 37.5),
        "in_flight": (2, 25.0),
        "pending": (2, 25.0),
        "failed": (1, 12.5),
        "skipped": (0, 0.0),
    }
    assert sum(s.share for s in segments(p)) == 100
    empty = Progress(total=0, done=0, failed=0, skipped=0, in_flight=0, pending=0, eta_s=0)
    assert all(s.share == 0 for s in segments(empty))


def test_a_stream_sends_only_what_differs_from_what_the_page_shows() -> None:
    shown = {"controls": "<b>Pause</b>", "devices": "<tr>old</tr>"}
    changes = live.Changes(live.parse_seen(live.seen_param(shown)))
    first = changes.diff({"controls": "<b>Pause</b>", "devices": "<tr>new</tr>", "x": "1"})
    assert [name for name, _, _ in first] == ["devices", "x"]
    # Later polls send a fragment only when it changes again, the page's one included.
    assert changes.diff({"controls": "<b>Pause</b>", "devices": "<tr>new</tr>", "x": "1"}) == []
    again = changes.diff({"controls": "<b>Resume</b>", "devices": "<tr>new</tr>", "x": "1"})
    assert [name for name, _, _ in again] == ["controls"]
    assert live.parse_seen("junk,,a.,.b,ok.1234") == {"ok": "1234"}
