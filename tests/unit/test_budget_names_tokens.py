"""Small value parsers: redundancy-group budgets, names and labels, and API token helpers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitstop.domain.inventory import Budget
from pitstop.domain.names import MAX_NAME, label_problem, name_problem
from pitstop.domain.tokens import display_prefix, looks_like_token, parse_duration, token_hash

# --- Budget.parse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", Budget(2)),
        (2, Budget(2)),
        (0, Budget(0)),
        ("0", Budget(0)),
        (" 7 ", Budget(7)),
        ("25%", Budget(25, percent=True)),
        (" 50 % ", Budget(50, percent=True)),
        ("100%", Budget(100, percent=True)),
        ("0%", Budget(0, percent=True)),
    ],
)
def test_budget_parse_accepts(text: str | int, expected: Budget) -> None:
    assert Budget.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["-1", -1, "101%", "abc", True, False, "", "%", "2.5", "25%%", "1 0", "50%x", "%50"],
)
def test_budget_parse_refuses(text: str | int) -> None:
    with pytest.raises(ValueError):
        Budget.parse(text)


@pytest.mark.parametrize("text", ["2", "25%", "0%", "100%", "0"])
def test_budget_str_round_trips(text: str) -> None:
    budget = Budget.parse(text)
    assert str(budget) == text
    assert Budget.parse(str(budget)) == budget


@pytest.mark.parametrize(
    ("budget", "members", "slots"),
    [
        (Budget(3), 10, 3),
        (Budget(0), 10, 0),
        (Budget(25, percent=True), 10, 2),  # 2.5 rounds down
        (Budget(50, percent=True), 10, 5),
        (Budget(33, percent=True), 10, 3),
        (Budget(99, percent=True), 100, 99),
        (Budget(100, percent=True), 7, 7),
        (Budget(1, percent=True), 10, 1),  # 0.1 rounds down to 0, but at least one
        (Budget(10, percent=True), 1, 1),
        (Budget(0, percent=True), 10, 0),
        (Budget(25, percent=True), 0, 0),
        (Budget(100, percent=True), 0, 0),
    ],
)
def test_budget_slots(budget: Budget, members: int, slots: int) -> None:
    assert budget.slots(members) == slots


@given(pct=st.integers(1, 100), members=st.integers(1, 100_000))
def test_budget_percent_slots_property(pct: int, members: int) -> None:
    slots = Budget(pct, percent=True).slots(members)
    assert slots == max(1, members * pct // 100)
    assert 1 <= slots <= members


# --- names and labels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["leaf1", "stor01", "a", "0", "a" * MAX_NAME, "rack-1.leaf_2", "1a", "a-b"]
)
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


def test_max_name_is_63() -> None:
    assert MAX_NAME == 63
    assert name_problem("a" * 63) is None


@pytest.mark.parametrize(
    "name",
    [
        "Leaf1",
        "LEAF",
        "lEaf1",
        "leaF",
        "-leaf",
        "leaf-",
        "leaf.",
        ".leaf",
        "_leaf",
        "leaf_",
        "leaf 1",
        " leaf",
        "leaf ",
        "caf\u00e9",
        "l\u0435af",  # Cyrillic small letter ie, not Latin e
        "leaf/1",
        "leaf:1",
        "leaf\t1",
    ],
)
def test_bad_names(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert "lowercase" in problem


def test_empty_name() -> None:
    assert name_problem("") == "must not be empty"


def test_too_long_name() -> None:
    problem = name_problem("a" * 64)
    assert problem is not None
    assert "63" in problem and "64" in problem


def test_name_with_trailing_newline_is_refused() -> None:
    assert name_problem("leaf1\n") is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("app", "web"),
        ("Rack", "A-1"),
        ("kubernetes.io/role", "leaf"),
        ("k", ""),
        ("k", "a" * 253),
        ("k" * 63, "v"),
        ("k", "user@host:1/2+x_y.z"),
    ],
)
def test_good_labels(key: str, value: str) -> None:
    assert label_problem(key, value) is None


@pytest.mark.parametrize("key", ["", "-k", "k-", ".k", "a b", "k" * 64, "cl\u00e9", "k=v", "k:v"])
def test_bad_label_keys(key: str) -> None:
    problem = label_problem(key, "v")
    assert problem is not None
    assert "label key" in problem


@pytest.mark.parametrize("value", ["a b", "v,w", "a" * 254, "\u00fc", "v=1", "v!", "\t"])
def test_bad_label_values(value: str) -> None:
    problem = label_problem("k", value)
    assert problem is not None
    assert "label value" in problem


def test_label_key_with_trailing_newline_is_refused() -> None:
    assert label_problem("k\n", "v") is not None


def test_label_value_with_trailing_newline_is_refused() -> None:
    assert label_problem("k", "v\n") is not None


# --- tokens -----------------------------------------------------------------------------------

GOOD_TOKEN = "pst_" + "AbCd1234" + "x" * 24


def test_token_hash_is_sha256_hex() -> None:
    # Known SHA-256 test vector for "abc".
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    h = token_hash(GOOD_TOKEN)
    assert len(h) == 64
    assert all(c in "0123456789abcdef" for c in h)
    assert h == token_hash(GOOD_TOKEN)
    assert h != token_hash(GOOD_TOKEN + "y")
    assert GOOD_TOKEN not in h


@pytest.mark.parametrize(
    "token",
    [GOOD_TOKEN, "pst_" + "a" * 32, "pst_" + "-_" * 16, "pst_" + "Z9" * 40],
)
def test_looks_like_token_accepts(token: str) -> None:
    assert looks_like_token(token) is True


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pst_",
        "pst_" + "a" * 31,
        "PST_" + "a" * 32,
        "pat_" + "a" * 32,
        "a" * 36,
        "pst_" + "a" * 31 + "!",
        "pst_" + "a" * 31 + " ",
        " pst_" + "a" * 32,
        "pst_" + "a" * 16 + "." + "a" * 16,
    ],
)
def test_looks_like_token_refuses(token: str) -> None:
    assert looks_like_token(token) is False


def test_token_with_trailing_newline_does_not_look_like_a_token() -> None:
    assert looks_like_token(GOOD_TOKEN + "\n") is False


def test_display_prefix() -> None:
    assert display_prefix(GOOD_TOKEN) == "pst_AbCd1234"
    assert len(display_prefix(GOOD_TOKEN)) == 12
    assert display_prefix("pst_ab") == "pst_ab"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        (" 1 d ", timedelta(days=1)),
        ("1w", timedelta(days=7)),
        ("3600s", timedelta(hours=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "30", "d", "30x", "-1d", "1.5h", "30D", "30 days", "1h30m", "h12", "30dd", "1y"],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
