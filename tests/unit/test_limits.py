"""The bounds of domain/limits.py as the parsers apply them: durations, selectors, event ids;
and the CLI's clean refusal of a duration past them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.domain.errors import ValidationFailed
from pitstop.domain.limits import MAX_INT64, MAX_SELECTOR_TERMS, event_id
from pitstop.domain.selectors import parse_selector
from pitstop.domain.tokens import parse_duration


@pytest.mark.parametrize("text", ["999999999d", "3654d", "522w", "9" * 5000 + "s"])
def test_durations_past_ten_years_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="at most 3653 days"):
        parse_duration(text)


def test_ten_years_is_the_longest_duration() -> None:
    assert parse_duration("3653d") == timedelta(days=3653)


def test_a_selector_holds_at_most_the_term_limit() -> None:
    assert len(parse_selector(",".join(f"k{i}" for i in range(MAX_SELECTOR_TERMS)))) == 32
    with pytest.raises(ValidationFailed) as caught:
        parse_selector(",".join(f"k{i}" for i in range(MAX_SELECTOR_TERMS + 1)), field="label")
    assert [e.field for e in caught.value.errors] == ["label"]


def test_empty_terms_do_not_count_against_the_limit() -> None:
    assert len(parse_selector("k1," + "," * 100)) == 1


@pytest.mark.parametrize("text", [str(MAX_INT64 + 1), "1" * 30, "-1", "1.5", "x"])
def test_event_ids_outside_64_bits_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailed):
        event_id(text)


def test_event_ids_within_64_bits_are_read() -> None:
    assert (event_id(None), event_id(""), event_id(" 7 "), event_id(str(MAX_INT64))) == (
        0,
        0,
        7,
        MAX_INT64,
    )


def test_audit_since_past_ten_years_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    env = {
        "PITSTOP_URL": "http://127.0.0.1:9",
        "PITSTOP_TOKEN": "pst_" + "a" * 32,
        "PITSTOP_CONFIG": str(tmp_path / "login.json"),
    }
    result = CliRunner().invoke(app, ["audit", "--since", "999999999d"], env=env)
    assert result.exit_code == 2, result.output
    assert "at most 3653 days" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
