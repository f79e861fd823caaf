"""A device's pace: how long its maintenance takes next to the typical device of its campaign,
learned from the campaigns it took part in before.

Durations repeat from one campaign to the next far more than they agree between devices: a
server with a long power-on self test reboots slowly every month, a storage node holding
more data drains longer, a router with a full table converges later. What a campaign's
devices take depends on its action too (nothing, a reboot, an upgrade), so what carries
over from one campaign to another is the ratio: the device's duration over the median
duration of that campaign's devices. A device's pace is the median of that ratio over its
last ``HISTORY`` campaigns. A device never seen before has no pace (the estimates treat it
as 1.0, the typical device).

The campaign dispatcher uses the pace to start likely stragglers first, and the hang check
to expect a slow device to be slow.

Pure: past runs in, one number per device out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# How many of a device's most recent campaigns its pace is the median over.
HISTORY = 3
# A campaign with fewer finished devices has no meaningful median to compare against.
MIN_PEERS = 3


@dataclass(frozen=True, slots=True)
class PastRun:
    campaign: str
    device: str
    duration_s: float


def paces(runs: Sequence[PastRun], *, history: int = HISTORY) -> dict[str, float]:
    """Each device's pace. ``runs`` are the finished devices of earlier campaigns, the most
    recent campaign first; runs without a positive duration are ignored."""
    by_campaign: dict[str, list[float]] = {}
    for r in runs:
        if r.duration_s > 0:
            by_campaign.setdefault(r.campaign, []).append(r.duration_s)
    median = {c: statistics.median(ds) for c, ds in by_campaign.items() if len(ds) >= MIN_PEERS}
    ratios: dict[str, list[float]] = {}
    for r in runs:
        if r.duration_s > 0 and r.campaign in median:
            seen = ratios.setdefault(r.device, [])
            if len(seen) < history:
                seen.append(r.duration_s / median[r.campaign])
    return {device: statistics.median(rs) for device, rs in ratios.items()}
