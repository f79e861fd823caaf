"""Putting a whole configuration back on an FRR router with FRR's own ``frr-reload.py``
(Debian package ``frr-pythontools``), and telling what still differs afterwards.

frr-reload compares the configuration it is given with ``show running-config`` block by block
and issues the ``no`` commands and additions that turn one into the other, in two passes,
through vtysh. It is run on the router's host (in its namespace, or over SSH) with the
configuration on stdin, written to a fresh temporary directory that also serves as its
``--confdir`` and ``--rundir``:

* frr-reload ends with ``write`` (saving the running config as the startup config) whenever
  the file it reloaded is not ``<confdir>/frr.conf``. The file *is* ``<confdir>/frr.conf``
  here, so nothing is saved: like a diversion, a restore never touches the startup config.
* It writes its command batches to ``--rundir``, which therefore need not be writable by the
  user pitstop connects as (``/var/run/frr`` usually is not).
* The empty ``vtysh.conf`` in it stands in for the router's own, which vtysh reads from the
  config dir: only ``service integrated-vtysh-config`` in it matters to frr-reload, and only
  to a ``write`` that does not happen.

Pure functions, so that the unit tests pin the command and the messages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

DEFAULT_FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
RELOAD_TIMEOUT_S = 120.0  # a large configuration takes frr-reload a while to compare
MAX_PASSES = 2

# $1 is the pathspace ("" for none); the rest is the frr-reload command, to which the
# temporary directory is added as confdir, rundir and the file to reload.
_SCRIPT = """\
d=$(mktemp -d) || exit 1
mkdir -p "$d/$1" && : >"$d/$1/vtysh.conf" && cat >"$d/frr.conf" && shift &&
  "$@" --confdir "$d" --rundir "$d" "$d/frr.conf"
rc=$?
rm -rf "$d"
exit $rc
"""

_HEADER = ("Building configuration...", "Current configuration:")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+")


def reload_argv(frr_reload: str, pathspace: str | None) -> list[str]:
    """The command that reloads the configuration given on its stdin."""
    command = ["python3", frr_reload, "--reload", "--stdout", "--log-level", "warning"]
    if pathspace:
        command += ["--pathspace", pathspace]
    return ["sh", "-c", _SCRIPT, "frr-reload", pathspace or "", *command]


def config_body(config: str) -> str:
    """``show running-config`` without the two lines vtysh prints before the configuration
    ("Building configuration...", "Current configuration:"), which are not commands."""
    lines = config.splitlines(keepends=True)
    while lines and (lines[0].strip() in _HEADER or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def comparable(config: str) -> str:
    """What a restore must make equal: the configuration without vtysh's header and without
    ``frr version``, which FRR itself writes and an upgrade changes; no reload can set it."""
    return "".join(
        ln
        for ln in config_body(config).splitlines(keepends=True)
        if not ln.startswith("frr version ")
    )


def failure(output: str) -> str:
    """frr-reload's complaint, on one line: its warnings and errors without colours and
    timestamps."""
    lines = [_LOG_PREFIX.sub("", _ANSI.sub("", ln)).strip() for ln in output.splitlines()]
    said = [ln for ln in lines if ln]
    return "; ".join(said[-4:])[-400:] or "no message"


def changed_lines(a: str, b: str) -> int:
    """How many lines are in one configuration and not the other (a count for the log)."""
    return len(set(a.splitlines()) ^ set(b.splitlines()))


def only_order_differs(want: str, got: str) -> bool:
    """The same lines, in another order: frr-reload sees nothing to change, so another pass
    cannot help. FRR lists prefix-lists and route-maps in the order they were created, so
    one deleted and re-created comes back after the others."""
    return want != got and Counter(want.splitlines()) == Counter(got.splitlines())


def difference(want: str, got: str) -> str:
    """What still differs between the configuration asked for and the running one."""
    if only_order_differs(want, got):
        return (
            "only the order of its lines differs (FRR lists named objects such as "
            "prefix-lists and route-maps in the order they were created)"
        )
    missing = _lines(Counter(want.splitlines()) - Counter(got.splitlines()))
    extra = _lines(Counter(got.splitlines()) - Counter(want.splitlines()))
    if not missing and not extra:
        return "only '!' separators and blank lines differ"
    parts = [f"{_count(missing)} missing ({_sample(missing)})"] if missing else []
    parts += [f"{_count(extra)} not asked for ({_sample(extra)})"] if extra else []
    return ", ".join(parts)


def _lines(counts: Counter[str]) -> list[str]:
    """The lines counted, without the separators FRR prints between blocks."""
    return [ln for ln in counts.elements() if ln.strip() not in ("", "!")]


def _count(lines: Sequence[str]) -> str:
    return f"{len(lines)} line{'' if len(lines) == 1 else 's'}"


def _sample(lines: Sequence[str]) -> str:
    shown = ", ".join(repr(ln.strip()) for ln in lines[:3])
    return shown + (", ..." if len(lines) > 3 else "")
