"""The fleet map: what consumers (load balancers, placement and replication services) are told
about each device, versioned by epoch, with FrostFS network-map semantics.

A device's status changes at once; the map changes only at the next epoch tick, when it is
rebuilt from every device's status and published as one immutable version. Consumers act on
the published map, never on a status in flight, so they all see the same view per epoch.

The map states and FrostFS's numbers (``ONLINE=1, OFFLINE=2, MAINTENANCE=3``):

============== ============ ==========================================================
status         map state    why
============== ============ ==========================================================
activated      ONLINE       in service
draining       MAINTENANCE  leaving service: send no new work, keep what it holds
maintenance    MAINTENANCE  out of service; its data counts as present
undraining     MAINTENANCE  not back until it is activated; the next epoch says ONLINE
error          OFFLINE      state unknown: do not count on it
pending        OFFLINE      not commissioned yet
decommissioned OFFLINE      gone for good
============== ============ ==========================================================

A replica on a MAINTENANCE member still counts as present and is not re-replicated; new work
should go elsewhere. Only OFFLINE means gone.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pitstop.domain.lifecycle import DeviceStatus


class MapState(enum.StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    MAINTENANCE = "MAINTENANCE"

    @property
    def number(self) -> int:
        """FrostFS's ``NodeInfo.State`` value."""
        return _NUMBER[self]


_NUMBER = {MapState.ONLINE: 1, MapState.OFFLINE: 2, MapState.MAINTENANCE: 3}

S = DeviceStatus
STATE_OF: Mapping[DeviceStatus, MapState] = {
    S.ACTIVATED: MapState.ONLINE,
    S.DRAINING: MapState.MAINTENANCE,
    S.MAINTENANCE: MapState.MAINTENANCE,
    S.UNDRAINING: MapState.MAINTENANCE,
    S.ERROR: MapState.OFFLINE,
    S.PENDING: MapState.OFFLINE,
    S.DECOMMISSIONED: MapState.OFFLINE,
}


def build(statuses: Mapping[str, DeviceStatus]) -> dict[str, MapState]:
    """Every device's map state, by name (sorted, so equal fleets give equal maps)."""
    return {name: STATE_OF[statuses[name]] for name in sorted(statuses)}


def digest(members: Mapping[str, MapState | str]) -> str:
    """A content hash of the members: the map's identity apart from its epoch."""
    canon = json.dumps({k: str(v) for k, v in sorted(members.items())}, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def tick_due(last: datetime | None, now: datetime, interval_s: float) -> bool:
    """Whether the next epoch is due: at once if none was published, else one interval on."""
    return last is None or now >= last + timedelta(seconds=interval_s)


@dataclass(frozen=True, slots=True)
class FleetMap:
    fabric: str
    epoch: int
    published_at: datetime
    published_by: str
    members: Mapping[str, MapState]
    digest: str

    @property
    def etag(self) -> str:
        # The epoch alone identifies a version; the digest guards against a database reset
        # that would reuse an epoch number for a different map.
        return f'"{self.epoch}-{self.digest[:16]}"'

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in MapState}
        for state in self.members.values():
            out[state.value] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "fabric": self.fabric,
            "epoch": self.epoch,
            "published_at": self.published_at.isoformat(),
            "published_by": self.published_by,
            "counts": self.counts(),
            "members": {name: state.value for name, state in self.members.items()},
        }
