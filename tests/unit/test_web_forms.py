"""The advanced_parameters form: generated from the schema, read back into overrides, and
validated by the domain with each message on its field."""

from __future__ import annotations

from starlette.datastructures import ImmutableMultiDict

from pitstop.domain.parameters import AdvancedParameters
from pitstop.web import forms
from pitstop.web.forms import all_fields, effective, form_sections, parse


def _submitted(values: dict[str, object]) -> ImmutableMultiDict[str, str]:
    """What a browser sends for the form showing ``values``: unticked boxes are left out."""
    items: list[tuple[str, str]] = []
    for f in all_fields(form_sections()):
        value = values.get(f.path)
        name = f"p.{f.path}"
        if f.kind == "bool":
            if value:
                items.append((name, "on"))
        elif f.kind == "choices":
            items += [(name, str(v)) for v in value or []]  # type: ignore[attr-defined]
        elif f.kind != "hidden":
            items.append((name, "" if value is None else str(value)))
    return ImmutableMultiDict(items)


def test_every_parameter_has_a_field() -> None:
    paths = {f.path for f in all_fields(form_sections())}
    flat = forms.flatten(AdvancedParameters().model_dump(mode="json"))
    assert paths == set(flat)


def test_labels_carry_units() -> None:
    labels = {f.path: f.label for f in all_fields(form_sections())}
    assert labels["sample_interval_s"] == "Sample interval (s)"
    assert labels["checks.cpu_idle.min_pct"] == "Min (%)"
    assert labels["checks.interface_errors.max_per_s"] == "Max (per second)"


def test_unchanged_form_gives_no_overrides() -> None:
    parsed = parse(_submitted(effective({}, {})), {})
    assert parsed.errors == {}
    assert parsed.overrides == {}


def test_changes_become_overrides_against_fabric_defaults() -> None:
    fabric = {"checks": {"memory": {"max_pct": 70}}}
    values = effective(fabric, {})
    assert values["checks.memory.max_pct"] == 70
    values["checks.cpu_idle.min_pct"] = "10"
    values["checks.daemons.enabled"] = False
    values["checks.alarms.severities"] = ["critical", "major"]
    parsed = parse(_submitted(values), fabric)
    assert parsed.errors == {}
    assert parsed.overrides == {
        "checks": {
            "cpu_idle": {"min_pct": 10.0},
            "daemons": {"enabled": False},
            "alarms": {"severities": ["critical", "major"]},
        }
    }


def test_bad_values_are_named_on_their_fields() -> None:
    values = effective({}, {})
    values["checks.cpu_idle.min_pct"] = "sixty"
    values["checks.bgp_flaps.max"] = "2.5"
    parsed = parse(_submitted(values), {})
    assert parsed.errors == {
        "checks.cpu_idle.min_pct": "enter a number",
        "checks.bgp_flaps.max": "enter a whole number",
    }
    values = effective({}, {})
    values["checks.memory.max_pct"] = "120"
    values["drain.timeout_s"] = "0"
    parsed = parse(_submitted(values), {})
    assert set(parsed.errors) == {"checks.memory.max_pct", "drain.timeout_s"}
    assert "100" in parsed.errors["checks.memory.max_pct"]


def test_numeric_fields_carry_the_schema_bounds() -> None:
    by_path = {f.path: f for f in all_fields(form_sections())}
    timeout = by_path["drain.timeout_s"]
    assert (timeout.minimum, timeout.maximum) == (1, 3600)
    poll = by_path["undrain.poll_interval_s"]
    assert (poll.minimum, poll.maximum) == (0.1, 60)
    numeric = [f for f in by_path.values() if f.kind in ("number", "integer")]
    assert numeric and all(f.minimum is not None and f.maximum is not None for f in numeric)


def test_an_infinite_value_typed_in_the_form_is_named_on_its_field() -> None:
    values = effective({}, {})
    values["drain.timeout_s"] = "inf"
    parsed = parse(_submitted(values), {})
    assert set(parsed.errors) == {"drain.timeout_s"}
