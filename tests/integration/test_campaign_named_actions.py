"""Campaigns run only what an admin defined: a named action, resolved when the campaign is
created and again when it starts, copied into the campaign then, and run with the device's
plain fields. On SQLite and PostgreSQL (the snapshot is stored)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from campaign_support import Rollout, definition
from engine_support import ADMIN, Engine, build_engine

from pitstop.domain.campaigns import CampaignState
from pitstop.domain.errors import CampaignInvalid
from pitstop.domain.named_actions import NamedAction
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.store import Store

C = CampaignState
OPS_DC1 = Actor("ops-dc1", Role.OPERATOR, frozenset({"dc1"}))
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# Appends its arguments as one line to the file named first: what ran, and with what.
RECORD = [
    sys.executable,
    "-c",
    "import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')",
]


@pytest.fixture
async def rollout(store: Store, clock: Any) -> Rollout:
    engine: Engine = await build_engine(store, clock)
    return Rollout(engine)


def _lines(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines()) if path.exists() else []


async def test_an_operator_runs_an_admin_defined_action_with_the_devices_fields(
    rollout: Rollout, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.txt"
    await rollout.define(
        "record", [*RECORD, str(ran), "{name}", "{fabric}", "{role}", "rack={labels[rack]}"]
    )
    body = definition(
        selector={"roles": ["leaf"], "labels": "rack=r1"},
        action={"type": "run", "name": "record"},
    )
    await rollout.service.create(body, actor=OPS_DC1, via=Via.API)
    await rollout.service.start("roll", actor=OPS_DC1, via=Via.API)
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED, campaign.error
    assert _lines(ran) == ["leaf1 dc1 leaf rack=r1", "leaf2 dc1 leaf rack=r1"]
    assert campaign.spec["action"]["command"][-4:] == [
        "{name}",
        "{fabric}",
        "{role}",
        "rack={labels[rack]}",
    ]


@SQLITE_ONLY
@pytest.mark.parametrize("actor", [OPS_DC1, ADMIN], ids=["operator", "admin"])
async def test_an_inline_command_is_refused_for_everyone(rollout: Rollout, actor: Actor) -> None:
    body = definition(action={"type": "command", "command": ["sh", "-c", "id"]})
    with pytest.raises(CampaignInvalid) as info:
        await rollout.service.create(body, actor=actor, via=Via.API)
    assert [r.split(":")[0] for r in info.value.reasons] == ["action.type", "action.command"]
    assert "define" in info.value.reasons[0]
    with pytest.raises(CampaignInvalid):
        await rollout.service.preview(body, actor=actor)
    assert await rollout.service.all() == []


@SQLITE_ONLY
async def test_an_unknown_action_or_one_not_allowed_on_the_fabric_is_refused(
    rollout: Rollout,
) -> None:
    body = definition(action={"type": "run", "name": "upgrade"})
    with pytest.raises(CampaignInvalid) as info:
        await rollout.service.create(body, actor=OPS_DC1, via=Via.API)
    assert info.value.reasons[0].startswith("action.name: no action is named 'upgrade'")

    await rollout.define("upgrade", [sys.executable, "-V"], fabrics=("storage",))
    with pytest.raises(CampaignInvalid) as info:
        await rollout.service.create(body, actor=OPS_DC1, via=Via.API)
    assert info.value.reasons == [
        "action.name: action 'upgrade' may run only on storage, not on fabric 'dc1'"
    ]
    assert await rollout.service.all() == []


async def _change(rollout: Rollout, name: str, **changes: Any) -> None:
    async with rollout.engine.store.unit() as u:
        now = await u.actions.get(name)
        await u.actions.update(NamedAction(**{**_fields(now), **changes}), actor="root")


def _fields(a: NamedAction) -> dict[str, Any]:
    return {k: getattr(a, k) for k in ("name", "command", "undo", "timeout_s", "fabrics")}


@SQLITE_ONLY
async def test_an_action_removed_or_narrowed_after_create_is_refused_at_start(
    rollout: Rollout,
) -> None:
    await rollout.define("upgrade", [sys.executable, "-V"])
    await rollout.create(action={"type": "run", "name": "upgrade"})
    await _change(rollout, "upgrade", fabrics=("storage",))
    with pytest.raises(CampaignInvalid) as info:
        await rollout.start()
    assert "may run only on storage" in info.value.reasons[0]
    async with rollout.engine.store.unit() as u:
        await u.actions.delete("upgrade")
    with pytest.raises(CampaignInvalid) as info:
        await rollout.start()
    assert info.value.reasons[0].startswith("action.name: no action is named 'upgrade'")
    assert (await rollout.campaign()).state is C.CREATED


async def test_edits_after_start_do_not_change_the_running_campaign(
    rollout: Rollout, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.txt"
    await rollout.define("record", [*RECORD, str(ran), "v1", "{name}"])
    await rollout.create(
        selector={"roles": ["leaf"], "labels": "rack=r1"},
        concurrency=1,
        action={"type": "run", "name": "record"},
    )
    await rollout.start()
    await _change(rollout, "record", command=(*RECORD, str(ran), "v2", "{name}"))
    async with rollout.engine.store.unit() as u:
        await u.actions.delete("record")
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED, campaign.error
    assert _lines(ran) == ["v1 leaf1", "v1 leaf2"]
    started = [e for e in await rollout.events() if e.message.startswith("action record: ")]
    assert len(started) == 1 and "v1 {name}" in started[0].message


@SQLITE_ONLY
async def test_a_missing_label_fails_that_device_naming_the_label(
    rollout: Rollout, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.txt"
    await rollout.define("record", [*RECORD, str(ran), "{labels[firmware]}"])
    await rollout.create(
        selector={"roles": ["leaf"], "labels": "rack=r1"},
        concurrency=1,
        action={"type": "run", "name": "record"},
    )
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.FAILED
    [failed] = [d for d in await rollout.devices() if d.state.value == "failed"]
    assert "no label 'firmware'" in (failed.error or "")
    assert not ran.exists()
