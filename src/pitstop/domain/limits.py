"""The bounds on what one request may hold, in one place so the API, the import and the web
agree, and so docs/limits.md can list them.

Each bound keeps a single request from costing the server more than a small, known amount of
time and memory, and keeps every value within what the databases store (64-bit integers).
The byte limits on whole bodies are settings (``PITSTOP_MAX_BODY_BYTES``...); these are not,
because the stored data and the pages that show it depend on them.
"""

from __future__ import annotations

from datetime import timedelta

from pitstop.domain.errors import FieldError, ValidationFailed

# Integers in paths, queries and bodies: what a signed 64-bit column holds.
MAX_INT64 = 2**63 - 1

# Nesting of JSON bodies and YAML documents: an inventory needs four levels.
MAX_DEPTH = 32

# Values one YAML import may hold per row allowed (PITSTOP_MAX_IMPORT_ROWS): a device with
# every label and group it may carry is about 200.
MAX_YAML_NODES_PER_ROW = 256

# Free text (descriptions, reasons, force reasons) and short references (tickets).
MAX_DESCRIPTION = 1000
MAX_REASON = 2000
MAX_TICKET = 127

# Labels: keys of 63 characters (as Kubernetes), values of 253 (names.py checks
# the characters); and how many a device or fabric may carry.
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 253
MAX_LABELS = 64

# Groups one device belongs to; connection options a device carries; fabrics a token is
# scoped to.
MAX_GROUPS = 64
MAX_TOKEN_FABRICS = 64
MAX_OPTIONS = 64
MAX_OPTION_VALUE = 1024

# Terms in one label selector: each becomes a clause of a query.
MAX_SELECTOR_TERMS = 32

# The longest duration a token lifetime or an audit ``--since`` may name.
MAX_DURATION = timedelta(days=3653)


def check_text(field: str, value: str | None, limit: int) -> None:
    """Refuse ``value`` when longer than ``limit``, naming the field; for the paths that take
    text without a schema (the web forms reach the engine directly)."""
    if value is not None and len(value) > limit:
        raise ValidationFailed(
            f"{field} must be at most {limit} characters",
            [FieldError(field, f"at most {limit} characters (got {len(value)})")],
        )


def event_id(text: str | None, *, field: str = "Last-Event-ID") -> int:
    """An event id sent back by a client (``Last-Event-ID``, ``after``): 0 when absent, and
    refused unless a decimal integer within 64 bits, which is what the databases hold."""
    if text is None or not text.strip():
        return 0
    text = text.strip()
    if not text.isdigit() or len(text) > 19 or int(text) > MAX_INT64:
        raise ValidationFailed(
            f"{field} must be an event id from 0 to {MAX_INT64}",
            [FieldError(field, f"expected an integer from 0 to {MAX_INT64}, got {text[:40]!r}")],
        )
    return int(text)
