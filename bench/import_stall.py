"""Import stall benchmark: how long ``/healthz`` waits while the server reads a large import.

    .venv/bin/python bench/import_stall.py [--rows 5000] [--modes loop,thread,process]

Runs a real server (uvicorn, SQLite in a temporary directory, no workers) once per mode, posts
the largest import the default limits allow (``--rows`` devices, each with labels, just under
``PITSTOP_MAX_IMPORT_BYTES``) as a dry run, and probes ``/healthz`` every 10 ms from another
thread while it is read. The modes say where the file is read:

- ``process``: pitstop as it is, in the import child process (``api/import_pool.py``);
- ``loop``: on the event loop, as pitstop did before;
- ``thread``: on a thread of the server (``asyncio.to_thread``), the tempting half-fix.

``loop`` and ``thread`` replace ``ImportReader.read`` in the benchmark's own server process
only. Then it posts a 12.7 MB file, which the body limit refuses. Prints, per mode: the import's
time, the slowest and the median ``/healthz`` answer during it, and the server's resident
memory (its main process) before and after, and that of its children after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "pst_" + "b" * 40


def inventory(rows: int, target_bytes: int) -> bytes:
    """A ``fabrics:`` file of ``rows`` devices, padded with labels to about ``target_bytes``."""
    per_row = max(1, target_bytes // rows)
    lines = ["fabrics:", "  - name: bench", "    groups:", "      - {name: g, max_unavailable: 1}"]
    lines.append("    devices:")
    for i in range(rows):
        row = f"      - {{name: d{i:05d}, role: leaf, groups: [g], labels: {{"
        labels: list[str] = []
        n = 0
        while len(row) + sum(len(x) + 2 for x in labels) < per_row - 40 and n < 60:
            labels.append(f"k{n}: v{i}-{n}")
            n += 1
        lines.append(row + ", ".join(labels) + "}}")
    return ("\n".join(lines) + "\n").encode()


def serve(mode: str, port: int, db: str) -> None:
    """The server side, in a process of its own (``--serve MODE``)."""
    import uvicorn

    from pitstop.api import import_pool
    from pitstop.api.app import create_app
    from pitstop.api.import_files import Parsed, parse_file
    from pitstop.runtime import serve_plan, serving
    from pitstop.settings import Settings

    async def on_loop(self: Any, text: str, *, fmt: str, fabric: str | None) -> Parsed:
        return parse_file(text, fmt=fmt, fabric=fabric, max_rows=self.max_rows)

    async def on_thread(self: Any, text: str, *, fmt: str, fabric: str | None) -> Parsed:
        return await asyncio.to_thread(
            parse_file, text, fmt=fmt, fabric=fabric, max_rows=self.max_rows
        )

    if mode == "loop":
        import_pool.ImportReader.read = on_loop  # type: ignore[method-assign]
    elif mode == "thread":
        import_pool.ImportReader.read = on_thread  # type: ignore[method-assign]
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", bootstrap_token=TOKEN, workers=0)
    backend = serving(settings, plan=serve_plan(settings), announce=lambda _: None)
    app = create_app(settings, backend=backend)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children_rss_mb(pid: int) -> float:
    """Resident memory of the server's child processes (the import process, in that mode)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_mb(int(child))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def probe(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=120) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.get(url + "/healthz")
            out.append(time.perf_counter() - t)
            time.sleep(0.01)


def post_while_probing(url: str, body: bytes) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(url, stop, latencies))
    prober.start()
    time.sleep(0.2)
    latencies.clear()  # only what the import overlaps
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/yaml"}
    t = time.perf_counter()
    r = httpx.post(
        url + "/api/v1/inventory/import",
        content=body,
        params={"dry_run": "true"},
        headers=headers,
        timeout=600,
    )
    took = time.perf_counter() - t
    stop.set()
    prober.join()
    return r.status_code, took, latencies


def run(mode: str, body: bytes, huge: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--db"]
        server = subprocess.Popen([*cmd, str(Path(tmp) / "bench.db")])
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            # Warm up: the first import starts the child process in the process mode.
            post_while_probing(url, b"- {name: w, role: leaf}\n")
            before = rss_mb(server.pid)
            status, took, lat = post_while_probing(url, body)
            after = rss_mb(server.pid)
            print(
                f"{mode:8} import {status} in {took:6.2f} s | /healthz during it: "
                f"max {max(lat) * 1000:8.1f} ms, median {statistics.median(lat) * 1000:6.1f} ms, "
                f"{len(lat)} probes | server RSS {before:6.0f} -> {after:6.0f} MB, "
                f"its children {children_rss_mb(server.pid):4.0f} MB"
            )
            status, took, lat = post_while_probing(url, huge)
            print(
                f"{'':8} {len(huge) / 1e6:.1f} MB file: {status} in {took:5.2f} s | /healthz max "
                f"{max(lat) * 1000:6.1f} ms | server RSS {rss_mb(server.pid):6.0f} MB"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--bytes", type=int, default=4 * 1024 * 1024 - 64 * 1024)
    parser.add_argument("--modes", default="process,loop,thread")
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db)
        return
    body = inventory(args.rows, args.bytes)
    huge = inventory(16_000, 12_700_000)
    print(f"import: {args.rows} devices, {len(body)} bytes; cores: {os.cpu_count()}")
    for mode in args.modes.split(","):
        run(mode, body, huge)


if __name__ == "__main__":
    main()
