"""The audit hash chain: hashing covers every field, and verify_chain catches edits,
deletions (including at the end, via the recorded head) and reordering."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitstop.domain.audit import GENESIS, AuditEntry, ChainProblem, entry_hash, verify_chain

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_entry(seq: int, prev_hash: str) -> AuditEntry:
    e = AuditEntry(
        seq=seq,
        at=T0 + timedelta(minutes=seq),
        actor="alice",
        action="device.status",
        via="api",
        fabric="dc1",
        device=f"leaf{seq}",
        device_id=uuid.UUID(int=seq),
        from_status="activated",
        to_status="draining",
        reason=f"reason {seq}",
        ticket=f"CHG-{seq}",
        job_id=uuid.UUID(int=1000 + seq),
        details={"n": seq},
        prev_hash=prev_hash,
    )
    return replace(e, hash=entry_hash(e))


def build_chain(n: int) -> list[AuditEntry]:
    chain: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        e = make_entry(seq, prev)
        chain.append(e)
        prev = e.hash
    return chain


def head(chain: list[AuditEntry]) -> dict[str, Any]:
    return (
        {"head_seq": chain[-1].seq, "head_hash": chain[-1].hash}
        if chain
        else {
            "head_seq": 0,
            "head_hash": GENESIS,
        }
    )


# --- entry_hash ----------------------------------------------------------------------------


def test_entry_hash_is_sha256_hex_and_deterministic() -> None:
    e = make_entry(1, GENESIS)
    assert len(e.hash) == 64
    assert all(c in "0123456789abcdef" for c in e.hash)
    assert entry_hash(e) == entry_hash(make_entry(1, GENESIS)) == e.hash


def test_entry_hash_ignores_the_hash_field_itself() -> None:
    e = make_entry(1, GENESIS)
    assert entry_hash(replace(e, hash="f" * 64)) == e.hash


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 2),
        ("at", T0 + timedelta(microseconds=1)),
        ("actor", "mallory"),
        ("action", "device.delete"),
        ("via", "cli"),
        ("fabric", "dc2"),
        ("fabric", None),
        ("device", "leaf9"),
        ("device_id", uuid.UUID(int=99)),
        ("device_id", None),
        ("from_status", "maintenance"),
        ("to_status", "activated"),
        ("reason", "other"),
        ("reason", None),
        ("ticket", "CHG-999"),
        ("job_id", uuid.UUID(int=42)),
        ("job_id", None),
        ("details", {"n": 2}),
        ("details", {}),
        ("prev_hash", "1" * 64),
    ],
)
def test_entry_hash_covers_every_field(field: str, value: Any) -> None:
    e = make_entry(1, GENESIS)
    assert getattr(e, field) != value  # guard on the test data
    assert entry_hash(replace(e, **{field: value})) != e.hash


# --- verify_chain --------------------------------------------------------------------------


def test_intact_chain_has_no_problems() -> None:
    chain = build_chain(5)
    assert verify_chain(chain, **head(chain)) == []


def test_intact_chain_from_an_iterator() -> None:
    chain = build_chain(5)
    assert verify_chain(iter(chain), **head(chain)) == []


def test_empty_chain_with_genesis_head_is_fine() -> None:
    assert verify_chain([], head_seq=0, head_hash=GENESIS) == []


def test_empty_chain_when_rows_were_recorded_is_a_problem() -> None:
    chain = build_chain(3)
    problems = verify_chain([], **head(chain))
    assert problems
    assert problems[-1].seq == 3
    assert "missing" in problems[-1].problem


def test_edited_middle_row_is_detected_at_its_seq() -> None:
    chain = build_chain(5)
    h = head(chain)
    chain[2] = replace(chain[2], reason="nothing to see here")
    assert verify_chain(chain, **h) == [ChainProblem(3, "content does not match its hash (edited)")]


def test_edited_and_rehashed_middle_row_breaks_the_next_link() -> None:
    chain = build_chain(5)
    h = head(chain)
    forged = replace(chain[2], reason="forged")
    chain[2] = replace(forged, hash=entry_hash(forged))
    problems = verify_chain(chain, **h)
    assert ChainProblem(4, "does not link to the row before it") in problems
    assert all(p.seq != 3 for p in problems)


def test_deleted_middle_row_is_detected() -> None:
    chain = build_chain(5)
    h = head(chain)
    del chain[2]
    problems = verify_chain(chain, **h)
    assert ChainProblem(4, "rows 3..3 are missing") in problems
    assert ChainProblem(4, "does not link to the row before it") in problems
    assert {p.seq for p in problems} == {4}


def test_deleted_first_row_is_detected() -> None:
    chain = build_chain(5)
    h = head(chain)
    del chain[0]
    problems = verify_chain(chain, **h)
    assert ChainProblem(2, "rows 1..1 are missing") in problems
    assert ChainProblem(2, "does not link to the row before it") in problems


def test_deleted_last_row_is_detected_by_the_head() -> None:
    chain = build_chain(5)
    h = head(chain)
    del chain[-1]
    # Without the recorded head the truncated chain looks intact...
    assert verify_chain(chain, **head(chain)) == []
    # ...with it, the loss is reported.
    assert verify_chain(chain, **h) == [ChainProblem(5, "rows 5..5 are missing at the end")]


def test_several_rows_deleted_at_the_end() -> None:
    chain = build_chain(6)
    h = head(chain)
    assert verify_chain(chain[:3], **h) == [ChainProblem(6, "rows 4..6 are missing at the end")]


def test_reordered_rows_are_detected() -> None:
    chain = build_chain(5)
    h = head(chain)
    chain[1], chain[2] = chain[2], chain[1]
    problems = verify_chain(chain, **h)
    assert problems
    assert any(p.problem == "sequence number out of order" for p in problems)
    assert any(p.problem == "does not link to the row before it" for p in problems)


def test_head_hash_mismatch_is_detected() -> None:
    chain = build_chain(3)
    problems = verify_chain(chain, head_seq=3, head_hash="e" * 64)
    assert problems == [ChainProblem(3, "chain head does not match")]


def test_rows_beyond_the_recorded_head_are_detected() -> None:
    chain = build_chain(4)
    old_head = head(chain[:3])
    problems = verify_chain(chain, **old_head)
    assert problems == [ChainProblem(4, "chain head does not match")]


# --- property: any single mutation is caught -----------------------------------------------


def _mutate(chain: list[AuditEntry], kind: str, i: int) -> list[AuditEntry]:
    out = list(chain)
    e = out[i]
    if kind == "delete":
        del out[i]
    elif kind == "edit_reason":
        out[i] = replace(e, reason=(e.reason or "") + "!")
    elif kind == "edit_actor":
        out[i] = replace(e, actor="mallory")
    elif kind == "edit_at":
        out[i] = replace(e, at=e.at + timedelta(seconds=1))
    elif kind == "edit_details":
        out[i] = replace(e, details={**e.details, "x": 1})
    elif kind == "edit_and_rehash":
        forged = replace(e, to_status="decommissioned")
        out[i] = replace(forged, hash=entry_hash(forged))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return out


@given(
    n=st.integers(1, 30),
    kind=st.sampled_from(
        ["delete", "edit_reason", "edit_actor", "edit_at", "edit_details", "edit_and_rehash"]
    ),
    data=st.data(),
)
def test_any_single_mutation_is_detected(n: int, kind: str, data: st.DataObject) -> None:
    chain = build_chain(n)
    h = head(chain)
    assert verify_chain(chain, **h) == []

    i = data.draw(st.integers(0, n - 1), label="index")
    mutated = _mutate(chain, kind, i)
    assert mutated != chain
    assert verify_chain(mutated, **h) != []
