"""Helpers for the CLI tests: a real ``pitstop serve`` (or ``pitstop demo``) in a child process,
and a free port to run it on.

The child's output goes to a file, not a pipe: nothing can block on a full pipe, and the output
can be read at any moment (to show why a server did not come up, or what ``demo`` announced).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Variables that would change what a server or the CLI does; a child never inherits them.
PITSTOP_VARS = (
    "PITSTOP_URL",
    "PITSTOP_TOKEN",
    "PITSTOP_CONFIG",
    "PITSTOP_DATABASE_URL",
    "PITSTOP_BOOTSTRAP_TOKEN",
    "PITSTOP_HOST",
    "PITSTOP_PORT",
)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick; closed again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def new_token() -> str:
    """A well-formed pitstop token: ``pst_`` and 40 URL-safe characters."""
    return "pst_" + secrets.token_urlsafe(40)[:40]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def child_env(home: Path, **pitstop: str) -> dict[str, str]:
    """The test process's environment without any PITSTOP_* setting, with ``pitstop`` added,
    and the per-user directories moved under ``home`` so nothing reads or writes the real ones."""
    env = {k: v for k, v in os.environ.items() if k not in PITSTOP_VARS}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        PYTHONUNBUFFERED="1",
    )
    env.update(pitstop)
    return env


class ServerProcess:
    """``python -m pitstop <command> --port N`` in a child process, with its output in a file."""

    def __init__(
        self, command: str, *, env: Mapping[str, str], log: Path, extra: Sequence[str] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._fh = log.open("wb")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pitstop", command, "--port", str(self.port), *extra],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=self._fh,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._fh.close()
            raise

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr, interleaved)."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``GET /readyz`` until it answers 200; fail with the server's output if the
        process exits or the time runs out."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise RuntimeError(
                        f"the server exited with status {code} before it was ready; "
                        f"its output:\n{self.output()}"
                    )
                try:
                    resp = http.get(f"{self.url}/readyz")
                except httpx.HTTPError as exc:
                    last = repr(exc)
                else:
                    if resp.status_code == 200:
                        return
                    last = f"{resp.status_code} {resp.text}"
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server at {self.url} was not ready after {timeout:.0f} s "
                        f"(last: {last}); its output:\n{self.output()}"
                    )
                time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time. Safe to call twice."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
            return self.proc.returncode
        finally:
            self._fh.close()

    def __enter__(self) -> ServerProcess:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
