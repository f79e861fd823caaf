"""Every fenced or audited write storage makes outside the ORM's CRUD, by name: the one place
a caller (the API, the engine) finds them, and the one implementation of each.

Each is a transaction of named SQL on the raw connection (``connector.py``, ADR 0007); a job's
writes start with the lease fence (``journal.fence``), a status change takes the fence when a
job makes it and goes without when a person does. The ORM repositories (``store.Unit``) keep
the inventory's CRUD, enqueue, cancel and retry, and the reads.

- ``leases.claim``: a job's lease, its epoch moved on (``leases.py``);
- ``leases.heartbeat``: the lease's expiry (``leases.py``);
- ``leases.release``: the lease given up, with the log lines (``leases.py``);
- ``journal.boundary``: a step's end, log lines, progress, the next step or the job's end
  (``journal.py``);
- ``journal.undo_steps``: the steps an undo reversed, as rolled back (``journal.py``);
- ``change_status``: a device's status, its budget reservation and its audit row, by hand
  or by a job (``transitions.py``).

The pieces they share are written once: the fence (``journal.fence``), the event insert
(``journal.add_events``), the job's end (``journal.end_job``, also run inside a unit for a
queued job's cancel), the device's pools (``transitions.DEVICE_POOLS``) and the reading of
instants (``clock.as_utc``).
"""

from __future__ import annotations

from pitstop.storage.clock import Clock
from pitstop.storage.connector import Connector
from pitstop.storage.journal import Journal
from pitstop.storage.leases import Leases
from pitstop.storage.transitions import Transitions


class Writes(Transitions):
    """The status change (``Transitions.change_status``), and the lease and journal writes
    (``leases``, ``journal``)."""

    def __init__(self, connector: Connector, clock: Clock, *, journal: Journal, leases: Leases):
        super().__init__(connector, clock)
        self.journal = journal
        self.leases = leases
