"""The child process that reads inventory files, so a large import never stalls the server.

Reading a file of a few MiB builds millions of Python objects. In the server's process, even
on a thread, that holds the GIL and makes the garbage collector walk those objects, and every
other request (``/healthz`` included) waits for seconds. A child process has its own GIL and
its own heap: the server only waits, asynchronously, for the plain result (``Parsed``), and
the child's memory is its own. One child reads one file at a time; further imports queue.

The pool starts its child on the first import (``spawn``, never ``fork``: the server runs
threads, and a forked copy of a thread holding a lock would hang), and the app's lifespan
shuts it down. A child that dies (killed for its memory, say) is replaced on the next import.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pitstop.api.import_files import Parsed, parse_file
from pitstop.domain.errors import FieldError, ValidationFailed


class ImportReader:
    def __init__(self, *, max_rows: int) -> None:
        self.max_rows = max_rows
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def read(self, text: str, *, fmt: str, fabric: str | None) -> Parsed:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor(), _read, text, fmt, fabric, self.max_rows
            )
        except BrokenProcessPool as exc:
            self.close()
            raise ValidationFailed(
                "the file could not be read: the reading process ended before it finished",
                [FieldError("document", "too large to read; split the file")],
            ) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _read(text: str, fmt: str, fabric: str | None, max_rows: int) -> Parsed:
    return parse_file(text, fmt=fmt, fabric=fabric, max_rows=max_rows)
