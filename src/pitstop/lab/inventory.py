"""The lab's routers as a pitstop inventory: the document ``lab up`` sends to
``POST /api/v1/inventory/import`` (or prints, with ``--no-register``).

Each router becomes a device of driver ``frr`` reached on this machine through its network
namespace and pathspace; ``options.peers`` names its BGP peers' namespaces, so the driver can
check from the peers' side that an undrained router's paths are valid and not de-preferred.
The spines form one redundancy group with ``max_unavailable: 1``. Hosts are not devices:
nothing maintains them. The fabric's defaults switch the CPU-idle check off: all lab routers
share this machine's CPU.
"""

from __future__ import annotations

from typing import Any

from pitstop.lab.topology import Topology


def inventory(topo: Topology) -> dict[str, Any]:
    ns = {r.name: r.netns for r in topo.routers}
    devices: list[dict[str, Any]] = []
    for r in topo.routers:
        peers = ",".join(ns[n.name] for n in r.neighbors)
        devices.append(
            {
                "name": r.name,
                "role": r.role,
                "driver": "frr",
                "groups": ["spines"] if r.role == "spine" else [],
                "labels": {"lab": topo.fabric, "asn": str(r.asn)},
                "connection": {
                    "options": {"netns": r.netns, "pathspace": r.pathspace, "peers": peers}
                },
            }
        )
    return {
        "fabrics": [
            {
                "name": topo.fabric,
                "description": (
                    f"FRR lab: {len(topo.spines)} spines, {len(topo.leaves)} leaves, "
                    f"{len(topo.hosts)} hosts (pitstop lab up)"
                ),
                "labels": {"kind": "network", "lab": "frr"},
                # Every lab router runs on this one machine: its CPU idle time measures the
                # machine (and whatever else runs on it), not a router.
                "parameters": {"checks": {"cpu_idle": {"enabled": False}}},
                "groups": [
                    {
                        "name": "spines",
                        "max_unavailable": 1,
                        "description": "Spine layer of the lab",
                    }
                ],
                "devices": devices,
            }
        ]
    }
