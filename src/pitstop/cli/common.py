"""What every command shares: the client, the consoles, the output option."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from pitstop.cli import config
from pitstop.cli.client import Client
from pitstop.cli.output import Format
from pitstop.domain.tokens import parse_duration

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

OutputOpt = Annotated[
    Format, typer.Option("--output", "-o", help="table for people; json or yaml for scripts")
]
FabricOpt = Annotated[
    str | None, typer.Option("--fabric", "-f", help="Fabric name (needed when names repeat)")
]


def client() -> Client:
    return Client(config.load())


def since_param(text: str | None) -> str | None:
    """``--since`` takes an ISO time or a duration back from now (2h, 7d)."""
    if text is None:
        return None
    try:
        return (datetime.now(UTC) - parse_duration(text)).isoformat()
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is neither a time (2026-01-31T10:00) nor 2h/7d"
        ) from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
