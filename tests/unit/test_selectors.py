"""Label selectors: parsing ``k=v,k2!=v,k3,!k4`` and matching terms against label maps."""

from __future__ import annotations

import pytest

from pitstop.domain.errors import ValidationFailed
from pitstop.domain.selectors import Op, Term, matches, parse_selector


def test_parse_all_four_operators() -> None:
    assert parse_selector("k=v,k2!=v,k3,!k4") == [
        Term("k", Op.EQ, "v"),
        Term("k2", Op.NE, "v"),
        Term("k3", Op.EXISTS, ""),
        Term("k4", Op.ABSENT, ""),
    ]


def test_double_equals_is_equality() -> None:
    assert parse_selector("k==v") == [Term("k", Op.EQ, "v")]


def test_whitespace_around_terms_keys_and_values_is_ignored() -> None:
    assert parse_selector("  k = v ,  k2 != w , k3 ,  !k4  ") == [
        Term("k", Op.EQ, "v"),
        Term("k2", Op.NE, "w"),
        Term("k3", Op.EXISTS, ""),
        Term("k4", Op.ABSENT, ""),
    ]


@pytest.mark.parametrize("text", ["", "   ", ",", " , ,, "])
def test_empty_selector_has_no_terms(text: str) -> None:
    assert parse_selector(text) == []


def test_empty_parts_between_commas_are_skipped() -> None:
    assert parse_selector("a=1,,b") == [Term("a", Op.EQ, "1"), Term("b", Op.EXISTS, "")]


def test_empty_value_is_allowed() -> None:
    assert parse_selector("k=") == [Term("k", Op.EQ, "")]
    assert parse_selector("k!=") == [Term("k", Op.NE, "")]


def test_keys_with_dots_and_slashes() -> None:
    assert parse_selector("kubernetes.io/role=leaf") == [Term("kubernetes.io/role", Op.EQ, "leaf")]


@pytest.mark.parametrize(
    "text",
    ["=v", "!", "a b=c", "!=v", "==v", "a b", "!k=v", "ok=1,=v", "! ", "a!b"],
)
def test_bad_terms_raise_validation_failed_naming_selector(text: str) -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        parse_selector(text)
    err = excinfo.value
    assert err.code == "VALIDATION_FAILED"
    assert len(err.errors) == 1
    assert err.errors[0].field == "selector"
    assert err.extra["errors"][0]["field"] == "selector"
    assert err.errors[0].message


def test_bad_term_error_quotes_the_term() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        parse_selector("good=1, a b=c")
    assert "'a b=c'" in excinfo.value.errors[0].message
    assert "'a b=c'" in excinfo.value.detail


def test_field_name_can_be_overridden() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        parse_selector("=v", field="labels")
    assert excinfo.value.errors[0].field == "labels"


LABELS = {"rack": "r1", "role": "leaf", "empty": ""}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        # k=v: present and equal only
        (Term("rack", Op.EQ, "r1"), True),
        (Term("rack", Op.EQ, "r2"), False),
        (Term("missing", Op.EQ, "r1"), False),
        (Term("empty", Op.EQ, ""), True),
        (Term("missing", Op.EQ, ""), False),
        # k!=v: absent or different
        (Term("rack", Op.NE, "r1"), False),
        (Term("rack", Op.NE, "r2"), True),
        (Term("missing", Op.NE, "r1"), True),
        # k: present, whatever the value
        (Term("rack", Op.EXISTS), True),
        (Term("empty", Op.EXISTS), True),
        (Term("missing", Op.EXISTS), False),
        # !k: absent
        (Term("rack", Op.ABSENT), False),
        (Term("empty", Op.ABSENT), False),
        (Term("missing", Op.ABSENT), True),
    ],
    ids=repr,
)
def test_term_matches(term: Term, expected: bool) -> None:
    assert term.matches(LABELS) is expected


def test_matches_is_a_conjunction() -> None:
    terms = parse_selector("rack=r1,role!=spine,role,!drained")
    assert matches(terms, LABELS) is True
    assert matches(terms, {**LABELS, "drained": "yes"}) is False
    assert matches(terms, {**LABELS, "role": "spine"}) is False
    assert matches(terms, {"rack": "r1"}) is False


def test_no_terms_match_everything() -> None:
    assert matches([], {}) is True
    assert matches([], LABELS) is True
