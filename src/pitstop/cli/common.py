"""What every command shares: the client, the consoles, the output option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from pitstop.cli import config
from pitstop.cli.client import Client
from pitstop.cli.output import Format
from pitstop.domain.tokens import looks_like_duration, parse_duration

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

OutputOpt = Annotated[
    Format, typer.Option("--output", "-o", help="table for people; json or yaml for scripts")
]
FabricOpt = Annotated[
    str | None, typer.Option("--fabric", "-f", help="Fabric name (needed when names repeat)")
]


# The clients the running command opened; the root group closes them when it ends.
_opened: ContextVar[list[Client] | None] = ContextVar("pitstop_cli_clients", default=None)


def client() -> Client:
    c = Client(config.load())
    opened = _opened.get()
    if opened is not None:
        opened.append(c)
    return c


@contextmanager
def closing_clients() -> Iterator[None]:
    token = _opened.set([])
    try:
        yield
    finally:
        for c in _opened.get() or []:
            c.close()
        _opened.reset(token)


def since_param(text: str | None) -> str | None:
    """``--since`` takes an ISO time or a duration back from now (2h, 7d)."""
    if text is None:
        return None
    if looks_like_duration(text):
        try:
            return (datetime.now(UTC) - parse_duration(text)).isoformat()
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is neither a time (2026-01-31T10:00) nor 2h/7d"
        ) from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
