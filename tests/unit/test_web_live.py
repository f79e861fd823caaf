"""Live streams: a reader that goes away never cuts a poll short (its transaction would stay
open), and events are framed as SSE."""

from __future__ import annotations

from typing import cast

import anyio
from fastapi import Request

from pitstop.web import live


class _Reader:
    async def is_disconnected(self) -> bool:
        return False


async def test_a_poll_runs_to_its_end_when_the_reader_goes_away() -> None:
    started, finished = anyio.Event(), []

    async def poll() -> tuple[list[tuple[str, str, int | None]], bool]:
        started.set()
        await anyio.sleep(0.05)  # a transaction, say
        finished.append(True)
        return [("x", "<p>1</p>", None)], False

    async def read() -> None:
        async for _ in live._run(cast(Request, _Reader()), poll, 0.01):
            pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await started.wait()
        tg.cancel_scope.cancel()
    assert finished == [True]


def test_an_event_carries_each_line_as_data() -> None:
    text = live.event("log", "<li>a</li>\n<li>b</li>", 7)
    assert text == "id: 7\nevent: log\ndata: <li>a</li>\ndata: <li>b</li>\n\n"
