"""``advanced_parameters``: the knobs of the maintenance workflows, as a versioned schema with
defaults. Fabric-level defaults and per-job overrides are merged over the built-in defaults
(``merge``), then validated here; every check can be switched off.

The defaults follow fabric-manager practice: no BGP peer down, at most 4 flaps, CPU idle at
least 60 %, memory at most 80 %, no critical alarm, interface error and drop *rates* (never raw
counters, which give false failures) under a threshold, and redundancy kept.

Every number has finite bounds, in the JSON schema too (``minimum``/``maximum``, which the web
form shows): an infinite drain timeout would hold a device diverted for ever, and a poll
interval of a nanosecond writes thousands of log rows a second. Timeouts are at most an hour,
the limit of the steps that poll (``engine.workflows``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pitstop.domain.errors import FieldError, ValidationFailed

SCHEMA_VERSION: Literal[1] = 1

# The bounds. A poll interval under 0.1 s measures nothing a device can show and writes a log
# line each time; a timeout past an hour meets the polling step's own limit first.
MAX_TIMEOUT_S = 3600.0
MIN_POLL_S = 0.1
MAX_POLL_S = 60.0
MAX_SAMPLE_INTERVAL_S = 60.0
MAX_COUNT = 1_000_000
MAX_RATE = 1e9

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Percent = Annotated[float, Field(ge=0, le=100)]
Rate = Annotated[float, Field(ge=0, le=MAX_RATE)]
Timeout = Annotated[float, Field(ge=1, le=MAX_TIMEOUT_S)]
PollInterval = Annotated[float, Field(ge=MIN_POLL_S, le=MAX_POLL_S)]


class _Strict(BaseModel):
    # Infinity and NaN are refused everywhere (JSON bodies may carry them, and 1e309 reads
    # as infinity).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Check(_Strict):
    enabled: bool = True


class MaxCount(Check):
    max: Count


class MinPct(Check):
    min_pct: Percent


class MaxPct(Check):
    max_pct: Percent


class MaxRate(Check):
    max_per_s: Rate = Field(description="Per interface, per second, over the window")


Severity = Literal["critical", "major", "minor"]


def _critical() -> list[Severity]:
    return ["critical"]


class Alarms(Check):
    severities: list[Severity] = Field(default_factory=_critical)


class Checks(_Strict):
    bgp_down_peers: MaxCount = MaxCount(max=0)
    bgp_flaps: MaxCount = MaxCount(max=4)
    cpu_idle: MinPct = MinPct(min_pct=60)
    memory: MaxPct = MaxPct(max_pct=80)
    interface_errors: MaxRate = MaxRate(max_per_s=1.0)
    interface_drops: MaxRate = MaxRate(max_per_s=10.0)
    alarms: Alarms = Alarms()
    daemons: Check = Check()
    redundancy: Check = Field(
        default=Check(),
        description="Another activated device of the same role stays in service, and every "
        "group of the device has room in its max_unavailable",
    )


class Drain(_Strict):
    method: str | None = Field(default=None, description="Diversion method; driver default")
    max_residual_pps: Rate = 10.0
    timeout_s: Timeout = Field(
        default=60.0, description="Counted from the step's first start, across a takeover"
    )
    poll_interval_s: PollInterval = 1.0


class Undrain(_Strict):
    timeout_s: Timeout = Field(
        default=60.0, description="Counted from the step's first start, across a takeover"
    )
    poll_interval_s: PollInterval = 1.0
    revert_config: bool = Field(
        default=False,
        description=(
            "Before traffic returns, put back the configuration the device had right after "
            "the diversion, undoing what was changed in maintenance; off, a change is only "
            "reported"
        ),
    )


class Compare(_Strict):
    peers: bool = True
    routes: bool = True
    interfaces: bool = True


class AdvancedParameters(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    health_check_abort: bool = Field(
        default=True, description="Stop the job when a health check fails"
    )
    rollback_on_failure: bool = Field(
        default=True, description="Remove the diversion again when activation fails after it"
    )
    sample_interval_s: float = Field(
        default=5.0,
        ge=0,
        le=MAX_SAMPLE_INTERVAL_S,
        description="Seconds between the two samples rates are taken from",
    )
    checks: Checks = Checks()
    drain: Drain = Drain()
    undrain: Undrain = Undrain()
    compare: Compare = Compare()


def merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge override mappings, later ones winning."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            elif isinstance(value, Mapping):
                out[key] = merge(value)
            else:
                out[key] = value
    return out


def resolve(
    *layers: Mapping[str, Any] | None, field: str = "advanced_parameters"
) -> AdvancedParameters:
    """Built-in defaults, then each layer (fabric defaults, job overrides); validated."""
    try:
        # The built-in defaults are the first layer, so an override that names one field of
        # a check keeps the others.
        return AdvancedParameters.model_validate(merge(AdvancedParameters().model_dump(), *layers))
    except ValidationError as exc:
        errors = [
            FieldError(
                ".".join([field, *(str(p) for p in e["loc"])]),
                e["msg"].removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in errors[:5]), errors
        ) from exc


def set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    """``checks.cpu_idle.min_pct=50`` from the CLI's ``--set`` into a nested mapping."""
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ValidationFailed(f"{dotted}: {part} is not a section")
        node = nxt
    node[parts[-1]] = value


def json_schema() -> dict[str, Any]:
    return AdvancedParameters.model_json_schema()
