"""Names of fabrics, devices and groups: a strict, DNS-like charset so they are safe in shells,
URLs, file names and router configs."""

from __future__ import annotations

import re

from pitstop.domain.limits import MAX_LABEL_KEY, MAX_LABEL_VALUE

MAX_NAME = 63
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9._:/@+-]{0,253}")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid name, or None when it is."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters (got {len(name)})"
    if not _NAME.fullmatch(name):
        return (
            "may hold only lowercase letters, digits, '.', '_' and '-', "
            "and must start and end with a letter or digit"
        )
    return None


def label_problem(key: str, value: str) -> str | None:
    """Why a label is not valid, or None."""
    if len(key) > MAX_LABEL_KEY:
        return f"label key {key[:20]!r}... must be at most {MAX_LABEL_KEY} characters"
    if len(value) > MAX_LABEL_VALUE:
        return f"label value for {key!r} must be at most {MAX_LABEL_VALUE} characters"
    if not _LABEL_KEY.fullmatch(key):
        return f"label key {key!r} may hold letters, digits, '.', '_', '/' and '-' (at most 63)"
    if not _LABEL_VALUE.fullmatch(value):
        return f"label value {value!r} for {key!r} has characters outside [A-Za-z0-9._:/@+-]"
    return None
