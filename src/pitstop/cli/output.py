"""Rendering for every read: a Rich table for people, JSON or YAML for scripts."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


# Colour helps, but the word is always there: the badge never relies on colour alone.
STATUS_STYLE = {
    "pending": "dim",
    "activated": "bold green",
    "draining": "bold yellow",
    "maintenance": "bold blue",
    "undraining": "bold cyan",
    "error": "bold white on red",
    "decommissioned": "dim strike",
}


# Columns that must never be cut: a truncated status or name misleads.
KEEP_WHOLE = frozenset({"NAME", "STATUS", "SEQ", "AT", "CHANGE", "ROLE"})


def badge(status: str | None) -> Text:
    if not status:
        return Text("-")
    return Text(f" {status} ", style=STATUS_STYLE.get(status, ""))


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def emit(
    console: Console,
    fmt: Format,
    data: Any,
    *,
    columns: Sequence[Column] | None = None,
    title: str | None = None,
) -> None:
    if fmt is Format.JSON:
        console.print_json(json.dumps(data, default=str), highlight=False)
        return
    if fmt is Format.YAML:
        console.out(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
        return
    if columns is None:
        details(console, data, title=title)
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(title=title, header_style="bold", show_lines=False)
    for name, _ in columns:
        if name in KEEP_WHOLE:
            table.add_column(name, no_wrap=True, min_width=len(name))
        else:
            table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(get(row)) for _, get in columns))
    console.print(table)
    if not rows:
        console.print("(none)", style="dim")


def details(console: Console, data: dict[str, Any], *, title: str | None = None) -> None:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        table.add_row(key, _cell(value))
    console.print(table)


def _cell(value: Any) -> Text:
    """Always a ``Text``: operators' free text (reasons, tickets) is never read as markup."""
    if isinstance(value, Text):
        return value
    if value is None:
        return Text("-")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, dict):
        return Text(", ".join(f"{k}={v}" for k, v in value.items()) or "-")
    if isinstance(value, list):
        return Text(", ".join(str(v) for v in value) or "-")
    return Text(str(value))
