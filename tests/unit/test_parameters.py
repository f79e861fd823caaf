"""advanced_parameters: defaults, layered overrides, validation naming the field, --set paths."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pitstop.domain.errors import ValidationFailed
from pitstop.domain.parameters import AdvancedParameters, json_schema, merge, resolve, set_path


def test_defaults_follow_fabric_manager_practice() -> None:
    p = resolve()
    assert p.schema_version == 1
    assert p.health_check_abort is True
    assert p.rollback_on_failure is True
    assert p.checks.bgp_down_peers.max == 0
    assert p.checks.bgp_flaps.max == 4
    assert p.checks.cpu_idle.min_pct == 60
    assert p.checks.memory.max_pct == 80
    assert p.checks.alarms.severities == ["critical"]
    assert p.drain.max_residual_pps == 10
    assert p.drain.timeout_s == 60


def test_a_partial_override_keeps_the_other_fields_of_the_check() -> None:
    p = resolve({"checks": {"bgp_down_peers": {"enabled": False}}})
    assert p.checks.bgp_down_peers.enabled is False
    assert p.checks.bgp_down_peers.max == 0
    assert p.checks.bgp_flaps.enabled is True


def test_later_layers_win_over_fabric_defaults() -> None:
    fabric = {"checks": {"cpu_idle": {"min_pct": 50}}, "drain": {"timeout_s": 120}}
    job = {"checks": {"cpu_idle": {"min_pct": 40}}}
    p = resolve(fabric, job)
    assert p.checks.cpu_idle.min_pct == 40
    assert p.drain.timeout_s == 120


def test_refusals_name_the_field_path() -> None:
    with pytest.raises(ValidationFailed) as info:
        resolve({"checks": {"cpu_idle": {"min_pct": 500}}, "bogus": 1})
    fields = {e.field for e in info.value.errors}
    assert "advanced_parameters.checks.cpu_idle.min_pct" in fields
    assert "advanced_parameters.bogus" in fields
    assert info.value.code == "VALIDATION_FAILED"


def test_merge_does_not_mutate_its_layers() -> None:
    base = {"a": {"b": 1}}
    merged = merge(base, {"a": {"c": 2}})
    assert merged == {"a": {"b": 1, "c": 2}}
    assert base == {"a": {"b": 1}}


def test_set_path_builds_nested_overrides() -> None:
    target: dict[str, object] = {}
    set_path(target, "checks.cpu_idle.min_pct", 50)
    set_path(target, "sample_interval_s", 0)
    assert resolve(target).checks.cpu_idle.min_pct == 50
    with pytest.raises(ValidationFailed):
        set_path(target, "sample_interval_s.x", 1)


def test_the_schema_is_versioned_and_lists_every_check() -> None:
    schema = json_schema()
    assert schema["properties"]["schema_version"]["const"] == 1
    checks = AdvancedParameters().model_dump()["checks"]
    assert set(checks) >= {"bgp_down_peers", "cpu_idle", "memory", "redundancy", "alarms"}


def _numbers(node: Any, defs: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every numeric leaf of the JSON schema by dotted path."""
    ref = node.get("$ref")
    if ref:
        node = {**defs[ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    if node.get("type") in ("number", "integer") and "const" not in node:
        return {path: node}
    out: dict[str, dict[str, Any]] = {}
    for name, prop in node.get("properties", {}).items():
        out.update(_numbers(prop, defs, f"{path}.{name}" if path else name))
    return out


def test_every_number_has_finite_bounds_in_the_schema() -> None:
    schema = json_schema()
    numbers = _numbers(schema, schema["$defs"])
    assert {"drain.timeout_s", "drain.poll_interval_s", "checks.bgp_flaps.max"} <= set(numbers)
    for path, node in numbers.items():
        assert math.isfinite(node["minimum"]) and math.isfinite(node["maximum"]), path
        assert node["minimum"] <= node.get("default", node["minimum"]) <= node["maximum"], path


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e309, 86_401, 0.5])
def test_a_timeout_must_be_finite_and_at_most_an_hour(bad: float) -> None:
    with pytest.raises(ValidationFailed) as info:
        resolve({"drain": {"timeout_s": bad}})
    assert [e.field for e in info.value.errors] == ["advanced_parameters.drain.timeout_s"]


def test_a_poll_interval_under_a_tenth_of_a_second_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        resolve({"undrain": {"poll_interval_s": 1e-9}})
    assert [e.field for e in info.value.errors] == ["advanced_parameters.undrain.poll_interval_s"]
    assert resolve({"undrain": {"poll_interval_s": 0.1}}).undrain.poll_interval_s == 0.1
