"""Sequence-numbered UDP flows between two lab hosts: the traffic whose loss proves (or
disproves) that a maintenance was hitless.

Sockets are created inside the hosts' network namespaces by a short-lived thread that joins
the namespace with ``setns(2)`` (a namespace switch applies to the calling thread only), so
one Python process can send from one host and receive on another while it drives pitstop.
Each flow has its own source port, so the leaves' layer-4 ECMP hash spreads the flows over
every spine. Every packet carries its flow number and sequence number; a packet counts as
lost when its sequence number never arrives.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from pitstop.lab.host import LabError

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_PACKET = struct.Struct("!HIq")  # flow, sequence, send time in ns
PAYLOAD = 64


def socket_in(netns: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A socket that lives in ``netns`` (it keeps that namespace for its whole life)."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"{NETNS_DIR}/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            made.append(socket.socket(socket.AF_INET, kind))
        except BaseException as exc:  # reported to the caller's thread below
            failed.append(exc)

    t = threading.Thread(target=enter, name=f"setns-{netns}")
    t.start()
    t.join()
    if failed:
        raise LabError(f"cannot open a socket in namespace {netns}: {failed[0]}")
    return made[0]


@dataclass
class FlowReport:
    sent: int
    received: int
    lost: int
    flows: int
    pps: float
    duration_s: float
    # The longest run of consecutive lost packets in any flow, as time at the flow's rate.
    longest_gap_s: float
    lost_per_flow: list[int] = field(default_factory=list)

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0


class UdpFlows:
    """``flows`` UDP flows from ``src`` to ``dst`` at ``pps`` packets per second in total.
    ``start()`` begins sending, ``stop()`` ends it and reports what was lost."""

    def __init__(
        self,
        *,
        src_ns: str,
        src_addr: str,
        dst_ns: str,
        dst_addr: str,
        flows: int = 32,
        pps: float = 500.0,
        port: int = 47000,
        base_sport: int = 40000,
    ) -> None:
        if flows < 1 or pps <= 0:
            raise ValueError("flows must be >= 1 and pps > 0")
        self.flows, self.pps = flows, pps
        self.dst = (dst_addr, port)
        self._rx = socket_in(dst_ns)
        self._rx.bind((dst_addr, port))
        self._rx.settimeout(0.2)
        self._tx: list[socket.socket] = []
        for i in range(flows):
            s = socket_in(src_ns)
            s.bind((src_addr, base_sport + i))
            self._tx.append(s)
        self._sent = [0] * flows
        self._seen: list[set[int]] = [set() for _ in range(flows)]
        self._stop = threading.Event()
        self._done_rx = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._ended = 0.0

    def start(self) -> UdpFlows:
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._receive, name="flows-rx", daemon=True),
            threading.Thread(target=self._send, name="flows-tx", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def _send(self) -> None:
        interval = 1.0 / self.pps
        next_at = time.monotonic()
        n = 0
        pad = b"\0" * (PAYLOAD - _PACKET.size)
        while not self._stop.is_set():
            flow = n % self.flows
            seq = self._sent[flow]
            # No route during an outage: the packet is lost, and counted as sent.
            with contextlib.suppress(OSError):
                self._tx[flow].sendto(_PACKET.pack(flow, seq, time.monotonic_ns()) + pad, self.dst)
            self._sent[flow] = seq + 1
            n += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # fell far behind (a stalled machine): do not burst
        self._ended = time.monotonic()

    def _receive(self) -> None:
        while not self._done_rx.is_set():
            try:
                data = self._rx.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) >= _PACKET.size:
                flow, seq, _ = _PACKET.unpack_from(data)
                if flow < self.flows:
                    self._seen[flow].add(seq)

    def sent(self) -> int:
        return sum(self._sent)

    def received(self) -> int:
        return sum(len(s) for s in self._seen)

    def stop(self, *, settle_s: float = 0.5) -> FlowReport:
        """Stop sending, wait ``settle_s`` for packets in flight, and report."""
        self._stop.set()
        self._threads[1].join()
        time.sleep(settle_s)
        self._done_rx.set()
        self._threads[0].join()
        for s in (self._rx, *self._tx):
            s.close()
        lost_per_flow = [self._sent[f] - len(self._seen[f]) for f in range(self.flows)]
        longest = 0
        for f in range(self.flows):
            run = 0
            seen = self._seen[f]
            for seq in range(self._sent[f]):
                run = 0 if seq in seen else run + 1
                longest = max(longest, run)
        per_flow_pps = self.pps / self.flows
        sent = self.sent()
        return FlowReport(
            sent=sent,
            received=self.received(),
            lost=sum(lost_per_flow),
            flows=self.flows,
            pps=self.pps,
            duration_s=(self._ended or time.monotonic()) - self._started,
            longest_gap_s=longest / per_flow_pps,
            lost_per_flow=lost_per_flow,
        )
