"""``pitstop map`` and ``pitstop epoch tick``: the fabric's published fleet map.

The map is what consumers see: it changes only at an epoch tick, so right after a status change
``pitstop map`` may still show the previous state; ``pitstop epoch tick`` publishes the next
epoch at once. ``--watch`` follows new epochs as the server publishes them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from pitstop.cli.common import OutputOpt, client, out
from pitstop.cli.output import Format, emit

epoch_app = typer.Typer(help="Fleet-map epochs.", no_args_is_help=True)

MapFabricOpt = Annotated[str, typer.Option("--fabric", "-f", help="Fabric name")]

STATE_STYLE = {"ONLINE": "bold green", "MAINTENANCE": "bold blue", "OFFLINE": "bold red"}


def _state(state: str) -> Text:
    return Text(f" {state} ", style=STATE_STYLE.get(state, ""))


def _summary(m: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in m["counts"].items())
    return f"fabric {m['fabric']} epoch {m['epoch']} published {m['published_at']}: {counts}"


def _print_map(m: dict[str, Any], output: Format) -> None:
    if output is not Format.TABLE:
        emit(out, output, m)
        return
    out.print(_summary(m), markup=False)
    rows = [{"device": d, "state": s} for d, s in m["members"].items()]
    emit(
        out,
        output,
        rows,
        columns=[("NAME", lambda r: r["device"]), ("STATE", lambda r: _state(r["state"]))],
    )


def show_map(
    fabric: MapFabricOpt,
    epoch: Annotated[int | None, typer.Option(help="An older epoch (default: the latest)")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow new epochs")] = False,
    count: Annotated[
        int | None, typer.Option(help="With --watch: stop after this many maps")
    ] = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Show a fabric's published fleet map: each device ONLINE, MAINTENANCE or OFFLINE."""
    c = client()
    if not watch:
        _print_map(c.get(f"/api/v1/fabrics/{fabric}/map", epoch=epoch), output)
        return
    seen = 0
    previous: dict[str, str] = {}
    for event, data, _ in c.stream(f"/api/v1/fabrics/{fabric}/map/watch"):
        if event != "map":
            continue
        m = json.loads(data)
        if output is Format.TABLE:
            out.print(_summary(m), markup=False)
            for name, state in m["members"].items():
                if previous and previous.get(name) != state:
                    was = previous.get(name, "absent")
                    out.print(Text.assemble(f"  {name}: {was} -> ", _state(state)))
            previous = dict(m["members"])
        else:
            # One document per line, so a script can read the stream as it comes.
            out.out(json.dumps(m, default=str))
        seen += 1
        if count is not None and seen >= count:
            return


@epoch_app.command("tick")
def epoch_tick(fabric: MapFabricOpt, output: OutputOpt = Format.TABLE) -> None:
    """Publish the fabric's next epoch now, from the devices' statuses as they are."""
    m = client().post(f"/api/v1/fabrics/{fabric}/epochs/tick")
    if output is Format.TABLE:
        out.print(_summary(m), markup=False)
    else:
        emit(out, output, m)
