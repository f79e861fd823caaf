"""The names of the steps and of the output keys that one layer writes and another reads.

A step's output is stored as JSON with the step (``Step.output``); the engine reads earlier
steps' outputs back (a takeover, the job's result), and the web draws its pages from them.
Writer and readers take the names from here, so renaming a key is one edit that every reader
follows, not a string to hunt down in the engine, the web and the CLI.
"""

from __future__ import annotations

import enum
from typing import Final


class StepName(enum.StrEnum):
    """The steps whose outputs are read outside the step that wrote them."""

    VALIDATE = "validate"
    HEALTH = "health"
    POST_HEALTH = "post_health"
    SNAPSHOT = "snapshot"
    VERIFY_DRAIN = "verify_drain"
    COMPARE = "compare"
    VERDICT = "verdict"


# The steps that measure health, in the order a job runs them.
HEALTH_STEPS: Final = (StepName.HEALTH, StepName.POST_HEALTH)


class HealthKey:
    """``health`` and ``post_health``: each check's result, and the worst of them."""

    CHECKS: Final = "checks"
    OVERALL: Final = "overall"
    SAMPLE: Final = "sample"
    RATES: Final = "rates"


class ValidateKey:
    """``validate``: the redundancy checks and the problems found."""

    REDUNDANCY: Final = "redundancy"
    PROBLEMS: Final = "problems"


class DrainKey:
    """``verify_drain``: how long the drain took, the traffic left and the limit it was held
    to, and the samples (each ``{T: seconds since the step started, PPS: transit}``). Each
    sample is also logged while the step runs, with ``TRANSIT_PPS`` and ``ELAPSED_S`` in the
    event's data, which is what a live chart draws before the step ends."""

    SECONDS: Final = "seconds"
    RESIDUAL_PPS: Final = "residual_pps"
    LIMIT_PPS: Final = "limit_pps"
    SAMPLES: Final = "samples"
    T: Final = "t"
    PPS: Final = "pps"
    TRANSIT_PPS: Final = "transit_pps"
    ELAPSED_S: Final = "elapsed_s"


class CompareKey:
    """``compare``: whether a snapshot was compared, and the differences found."""

    COMPARED: Final = "compared"


class VerdictKey:
    """``verdict``: why activation would not go ahead, and the warnings."""

    PROBLEMS: Final = "problems"
    WARNINGS: Final = "warnings"
    PASSED: Final = "passed"
