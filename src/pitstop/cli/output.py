"""Rendering for every read: a Rich table for people, JSON or YAML for scripts."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from rich.cells import cell_len
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


# Columns shown whole while the terminal allows: a folded status, name or time is hard to read.
KEEP_WHOLE = frozenset({"NAME", "FABRIC", "STATUS", "SEQ", "AT", "CHANGE", "ROLE"})
# Of those, the ones never folded at all: a name is what people copy and search for.
NEVER_FOLD = frozenset({"NAME", "STATUS", "SEQ"})
# Text narrower than this folds into a column of short, hard-to-read lines.
FOLD_AT = 16


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
    optional: Sequence[str] = (),
) -> None:
    """Print ``data`` as JSON, YAML or a table. A table fits the console: ``optional`` names
    the columns that may be left out, first to go first, when the rest would not fit."""
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
    cells = [[_cell(get(row)) for _, get in columns] for row in rows]
    names = [name for name, _ in columns]
    keep, widths = _layout(names, cells, console.width, optional)
    table = Table(title=title, header_style="bold", show_lines=False)
    for i in keep:
        # Nothing is cut: a value wider than its column folds onto more lines.
        table.add_column(names[i], overflow="fold", width=widths[i])
    for row_cells in cells:
        table.add_row(*(row_cells[i] for i in keep))
    needed = sum(widths[i] for i in keep) + _frame(len(keep))
    if needed > console.width:
        # Even without the optional columns the names do not fit: print them whole, wider
        # than the terminal (which wraps the lines), rather than cut or fold a name.
        table.width = needed
        console.print(table, crop=False)
    else:
        console.print(table)
    if not rows:
        console.print("(none)", style="dim")


def _frame(count: int) -> int:
    """Characters a table's borders and padding take: a rule and two spaces per column, and
    the closing rule."""
    return 3 * count + 1


def _layout(
    names: Sequence[str], cells: Sequence[Sequence[Text]], width: int, optional: Sequence[str]
) -> tuple[list[int], list[int]]:
    """Which columns to show, and each one's width.

    A header is never split: a column is at least as wide as its header. Comfortable widths
    show a ``KEEP_WHOLE`` column's values whole and give free text ``FOLD_AT`` characters;
    the optional columns go, in the order given, while the rest would not fit so. If they
    still do not, every column but the ``NEVER_FOLD`` ones may fold, free text down to its
    header's width. Room left over widens the columns whose values were folded."""
    natural = [max([len(name)] + [_width(row[i]) for row in cells]) for i, name in enumerate(names)]

    def narrowest(i: int, fold_at: int) -> int:
        if names[i] in NEVER_FOLD:
            return natural[i]
        return min(natural[i], max(len(names[i]), fold_at))

    comfortable = [
        narrowest(i, natural[i] if name in KEEP_WHOLE else FOLD_AT) for i, name in enumerate(names)
    ]
    least = [narrowest(i, FOLD_AT if name in KEEP_WHOLE else 0) for i, name in enumerate(names)]

    def need(widths: Sequence[int], keep: Sequence[int]) -> int:
        return sum(widths[i] for i in keep) + _frame(len(keep))

    keep = list(range(len(names)))
    for name in optional:
        if need(comfortable, keep) <= width:
            break
        keep = [i for i in keep if names[i] != name]
    widths = list(comfortable if need(comfortable, keep) <= width else least)
    room = width - need(widths, keep)
    # Room left goes one character at a time to the column missing the most.
    while room > 0:
        short = max(keep, key=lambda i: natural[i] - widths[i], default=None)
        if short is None or widths[short] >= natural[short]:
            break
        widths[short] += 1
        room -= 1
    return keep, widths


def _width(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


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
