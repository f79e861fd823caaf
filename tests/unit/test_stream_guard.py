"""A stream's guard looks its credential up again every few seconds, not on every poll, and
once refused it stays refused."""

from __future__ import annotations

from pitstop.domain.errors import Unauthenticated
from pitstop.engine.stream_guard import StreamGuard


class _Time:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_credential_is_checked_every_interval_and_a_refusal_sticks() -> None:
    time, calls, valid = _Time(), [], [True]

    async def check() -> None:
        calls.append(time.now)
        if not valid[0]:
            raise Unauthenticated("token 'x' was revoked")

    guard = StreamGuard(check, every_s=2.0, clock=time)
    for _ in range(5):  # polls within the first interval cost no lookup
        time.now += 0.3
        assert await guard.allows()
    assert calls == []
    time.now = 102.0
    assert await guard.allows()
    assert calls == [102.0]
    valid[0] = False
    time.now = 103.0
    assert await guard.allows()  # not checked again yet
    time.now = 104.0
    assert not await guard.allows()
    assert guard.refusal is not None and "revoked" in guard.refusal.detail
    valid[0] = True
    time.now = 110.0
    assert not await guard.allows()
    assert calls == [102.0, 104.0]
