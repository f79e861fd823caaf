"""The audit chain: each row carries the hash of the row before it, so an edited or deleted row
shows up when the chain is verified. Hashing and verification are pure functions on rows."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited change. ``action`` says what kind (``device.status``, ``token.create``...)."""

    seq: int
    at: datetime
    actor: str
    action: str
    via: str
    fabric: str | None = None
    device: str | None = None
    device_id: uuid.UUID | None = None
    from_status: str | None = None
    to_status: str | None = None
    reason: str | None = None
    ticket: str | None = None
    job_id: uuid.UUID | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


def _canonical(entry: AuditEntry) -> bytes:
    at = entry.at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = {
        "seq": entry.seq,
        "at": at,
        "actor": entry.actor,
        "action": entry.action,
        "via": entry.via,
        "fabric": entry.fabric,
        "device": entry.device,
        "device_id": str(entry.device_id) if entry.device_id else None,
        "from": entry.from_status,
        "to": entry.to_status,
        "reason": entry.reason,
        "ticket": entry.ticket,
        "job_id": str(entry.job_id) if entry.job_id else None,
        "details": entry.details,
        "prev": entry.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(
    entries: Iterable[AuditEntry], *, head_seq: int, head_hash: str
) -> list[ChainProblem]:
    """Every break in the chain. ``head_seq``/``head_hash`` are the last link as recorded when
    it was written, so a deletion at the end is caught too."""
    problems: list[ChainProblem] = []
    expected_prev, expected_seq = GENESIS, 1
    for e in entries:
        if e.seq != expected_seq:
            problems.append(
                ChainProblem(e.seq, f"rows {expected_seq}..{e.seq - 1} are missing")
                if e.seq > expected_seq
                else ChainProblem(e.seq, "sequence number out of order")
            )
        if e.prev_hash != expected_prev:
            problems.append(ChainProblem(e.seq, "does not link to the row before it"))
        if entry_hash(e) != e.hash:
            problems.append(ChainProblem(e.seq, "content does not match its hash (edited)"))
        expected_prev, expected_seq = e.hash, e.seq + 1
    if expected_seq - 1 != head_seq or expected_prev != head_hash:
        if expected_seq - 1 < head_seq:
            problems.append(
                ChainProblem(head_seq, f"rows {expected_seq}..{head_seq} are missing at the end")
            )
        else:
            problems.append(ChainProblem(expected_seq - 1, "chain head does not match"))
    return problems
