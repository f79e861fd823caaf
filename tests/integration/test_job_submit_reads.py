"""Submitting a job reads what it needs once: its CPU is mostly the statements it runs."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event

from pitstop.api.startup import seed_demo
from pitstop.domain.jobs import JobStatus, JobType
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.service import JobService
from pitstop.storage.store import Store

ALICE = Actor("alice", Role.OPERATOR)
FROM_FABRICS = re.compile(r"\bFROM\s+\"?fabrics\"?(\s|$)", re.I)


async def submit_counting_fabric_reads(store: Store, fabric: str | None) -> tuple[Any, int]:
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if FROM_FABRICS.search(statement):
            reads.append(statement)

    engine = store.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        job = await JobService(store).submit(
            job_type=JobType.HEALTHCHECK,
            device="leaf1",
            fabric=fabric,
            mode=None,
            advanced_parameters={},
            reason="check",
            ticket=None,
            expected_end=None,
            actor=ALICE,
            via=Via.API,
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return job, len(reads)


async def test_a_submit_naming_the_fabric_reads_the_fabric_once(store: Store) -> None:
    await seed_demo(store)
    job, reads = await submit_counting_fabric_reads(store, "dc1")
    assert job.status is JobStatus.QUEUED and job.fabric == "dc1"
    assert reads == 1


async def test_a_submit_without_a_fabric_reads_the_devices_fabric_once(store: Store) -> None:
    await seed_demo(store)
    job, reads = await submit_counting_fabric_reads(store, None)
    assert job.status is JobStatus.QUEUED and job.fabric == "dc1"
    assert reads == 1
