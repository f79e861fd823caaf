"""Campaigns end to end on the demo fleet (simulated driver, fake clock), on SQLite and
PostgreSQL: the sliding window within the groups' budgets, online validation, each action
kind, a failure under each policy, pause and resume, abort, and rollback."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_support import Rollout, counts
from engine_support import Engine, build_engine

from pitstop.domain.campaigns import CampaignState
from pitstop.storage.store import Store

C = CampaignState


@pytest.fixture
async def rollout(store: Store, clock: Any) -> Rollout:
    engine: Engine = await build_engine(store, clock)
    return Rollout(engine)


async def test_leaves_roll_within_their_mlag_budgets(rollout: Rollout) -> None:
    await rollout.create(concurrency=3)
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED, campaign.error
    states = await rollout.states()
    assert states == dict.fromkeys([f"leaf{i}" for i in range(1, 7)], "done")
    for pair in (["leaf1", "leaf2"], ["leaf3", "leaf4"], ["leaf5", "leaf6"]):
        assert await rollout.max_out_at_once(pair) == 1
    assert 1 < await rollout.max_out_at_once([f"leaf{i}" for i in range(1, 7)]) <= 3
    for name in states:
        assert (await rollout.engine.device(name)).status.value == "activated"
