"""The error catalogue: stable, unique, upper-snake codes with 4xx statuses (gateway statuses
for errors of the device behind a driver)."""

from __future__ import annotations

import inspect
import re

import pytest

from pitstop.domain import errors
from pitstop.domain.errors import (
    FieldError,
    PitstopError,
    TransitionNotAllowed,
    ValidationFailed,
    catalogue,
)

REQUIRED_CODES = {
    "NOT_FOUND",
    "VALIDATION_FAILED",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "TRANSITION_NOT_ALLOWED",
    "CONFLICT",
    "DEVICE_UNDER_MAINTENANCE",
    "DEVICE_BUSY",
    "MAINTENANCE_DISALLOWED",
    "BUDGET_EXCEEDED",
}
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")

CATALOGUE = catalogue()
CLASSES = list(CATALOGUE.values())


def make(cls: type[PitstopError]) -> PitstopError:
    """An instance of any catalogue class, whatever its constructor needs."""
    if issubclass(cls, TransitionNotAllowed):
        return cls("no edge", current="pending", requested="draining", allowed=["activated"])
    if issubclass(cls, ValidationFailed):
        return cls("bad input", [FieldError("name", "must not be empty")])
    return cls("something happened")


def test_catalogue_keys_are_the_class_codes() -> None:
    for code, cls in CATALOGUE.items():
        assert cls.code == code


def test_every_error_class_in_the_module_is_catalogued() -> None:
    # catalogue() is keyed by code, so a duplicate code would silently drop a class;
    # comparing against every subclass defined in the module catches that.
    defined = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, PitstopError)
        and obj is not PitstopError
        and obj.__module__ == errors.__name__
    }
    assert defined == set(CLASSES)


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(codes) == len(set(codes))
    # No catalogue class may inherit the base class's code.
    assert PitstopError.code not in codes


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_code_is_upper_snake(cls: type[PitstopError]) -> None:
    assert UPPER_SNAKE.match(cls.code), cls.code


def test_required_codes_exist() -> None:
    missing = REQUIRED_CODES - set(CATALOGUE)
    assert not missing, missing


# Errors of the device behind a driver are the upstream's fault, reported as gateway errors.
UPSTREAM = {"DEVICE_UNREACHABLE": 502, "DRIVER_ERROR": 502, "DRIVER_TIMEOUT": 504}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_http_status_is_4xx_or_an_upstream_gateway_error(cls: type[PitstopError]) -> None:
    if cls.code in UPSTREAM:
        assert cls.http_status == UPSTREAM[cls.code]
    else:
        assert 400 <= cls.http_status < 500


@pytest.mark.parametrize(
    ("code", "status"), [("NOT_FOUND", 404), ("UNAUTHENTICATED", 401), ("FORBIDDEN", 403)]
)
def test_well_known_statuses(code: str, status: int) -> None:
    assert CATALOGUE[code].http_status == status


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_title_is_set(cls: type[PitstopError]) -> None:
    assert cls.title
    assert cls.title != PitstopError.title


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_str_starts_with_code(cls: type[PitstopError]) -> None:
    err = make(cls)
    assert isinstance(err, PitstopError)
    assert str(err).startswith(cls.code)
    assert str(err) == f"{cls.code}: {err.detail}"


def test_validation_failed_carries_field_errors() -> None:
    err = ValidationFailed(
        "bad", [FieldError("name", "empty"), FieldError("labels", "bad key", row=3)]
    )
    assert [e.field for e in err.errors] == ["name", "labels"]
    assert err.extra["errors"] == [
        {"field": "name", "message": "empty"},
        {"field": "labels", "message": "bad key", "row": 3},
    ]


def test_transition_not_allowed_extra() -> None:
    err = make(TransitionNotAllowed)
    assert isinstance(err, TransitionNotAllowed)
    assert err.allowed == ["activated"]
    assert err.extra == {"current": "pending", "requested": "draining", "allowed": ["activated"]}
