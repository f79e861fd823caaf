"""The lab's plan: which routers and hosts an eBGP spine-leaf fabric has, how they are wired
and addressed, and the FRR configuration of each router. Pure values; nothing here runs a
command.

Every name the lab creates on the machine comes from here and starts with ``PREFIX`` and the
fabric's name (``psl-lab-spine1``), so a lab can live beside other FRR instances and
namespaces, and ``lab down`` can tell its own from everyone else's.

Addressing (inside the lab's namespaces only, so two fabrics may reuse it):

* spine *i* to leaf *j* link: ``10.200.i.(2j-2)/31`` on the spine, ``.(2j-1)`` on the leaf;
* loopbacks: spines ``10.255.0.i/32``, leaves ``10.255.1.j/32``;
* host *k* of leaf *j* has its own link ``10.(100+j).k.0/24``: the leaf is ``.1``, the host
  ``.10``.

Spines share AS 65000 and leaf *j* is AS ``65100+j`` (the usual RFC 7938 layout), so a leaf
sees one path per spine with equal AS-path length and ``maximum-paths`` spreads flows over all
spines. BGP timers are 1/3 s and the advertisement interval 0, so a lab converges in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PREFIX = "psl-"
SPINE_ASN = 65000
LEAF_ASN_BASE = 65100
MAX_SPINES = 8
MAX_LEAVES = 64
MAX_HOSTS_PER_LEAF = 8
_FABRIC = re.compile(r"[a-z][a-z0-9]{0,5}")


@dataclass(frozen=True, slots=True)
class Link:
    """One point-to-point link between two namespaces, with the interface name at each end."""

    a_ns: str
    a_if: str
    a_addr: str  # with prefix length
    b_ns: str
    b_if: str
    b_addr: str


@dataclass(frozen=True, slots=True)
class Neighbor:
    address: str
    asn: int
    name: str  # the peer's device name, for descriptions


@dataclass(frozen=True, slots=True)
class Router:
    name: str  # device name in pitstop: spine1, leaf2
    role: str  # spine | leaf
    netns: str  # also the FRR pathspace
    asn: int
    router_id: str
    neighbors: tuple[Neighbor, ...]
    networks: tuple[str, ...]  # prefixes it originates

    @property
    def pathspace(self) -> str:
        return self.netns


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    netns: str
    leaf: str
    address: str  # without prefix length
    gateway: str


@dataclass(frozen=True, slots=True)
class Topology:
    fabric: str
    routers: tuple[Router, ...]
    hosts: tuple[Host, ...]
    links: tuple[Link, ...]
    loopbacks: dict[str, str] = field(default_factory=dict)  # netns -> address/32

    @property
    def spines(self) -> tuple[Router, ...]:
        return tuple(r for r in self.routers if r.role == "spine")

    @property
    def leaves(self) -> tuple[Router, ...]:
        return tuple(r for r in self.routers if r.role == "leaf")

    def router(self, name: str) -> Router:
        for r in self.routers:
            if r.name == name:
                return r
        raise KeyError(name)

    def namespaces(self) -> tuple[str, ...]:
        return tuple(r.netns for r in self.routers) + tuple(h.netns for h in self.hosts)


def check_fabric_name(fabric: str) -> str:
    """Lower-case letters and digits, at most 6 characters: the name is part of every
    namespace and pathspace the lab creates, and interface names stay under 16 bytes."""
    if not _FABRIC.fullmatch(fabric):
        raise ValueError(
            f"fabric name {fabric!r}: use 1-6 lower-case letters or digits, starting with a letter"
        )
    return fabric


def plan(
    *, fabric: str = "lab", spines: int = 2, leaves: int = 4, hosts_per_leaf: int = 1
) -> Topology:
    """The topology ``lab up`` builds. Raises ``ValueError`` naming the bad argument."""
    check_fabric_name(fabric)
    for name, value, low, high in (
        ("spines", spines, 1, MAX_SPINES),
        ("leaves", leaves, 2, MAX_LEAVES),
        ("hosts-per-leaf", hosts_per_leaf, 0, MAX_HOSTS_PER_LEAF),
    ):
        if not low <= value <= high:
            raise ValueError(f"--{name} must be between {low} and {high}, got {value}")
    ns = f"{PREFIX}{fabric}-"
    links: list[Link] = []
    spine_nbrs: dict[int, list[Neighbor]] = {i: [] for i in range(1, spines + 1)}
    leaf_nbrs: dict[int, list[Neighbor]] = {j: [] for j in range(1, leaves + 1)}
    for i in range(1, spines + 1):
        for j in range(1, leaves + 1):
            s_addr, l_addr = f"10.200.{i}.{2 * j - 2}", f"10.200.{i}.{2 * j - 1}"
            links.append(
                Link(
                    f"{ns}spine{i}",
                    f"to-leaf{j}",
                    f"{s_addr}/31",
                    f"{ns}leaf{j}",
                    f"to-spine{i}",
                    f"{l_addr}/31",
                )
            )
            spine_nbrs[i].append(Neighbor(l_addr, LEAF_ASN_BASE + j, f"leaf{j}"))
            leaf_nbrs[j].append(Neighbor(s_addr, SPINE_ASN, f"spine{i}"))
    routers: list[Router] = []
    loopbacks: dict[str, str] = {}
    for i in range(1, spines + 1):
        rid = f"10.255.0.{i}"
        loopbacks[f"{ns}spine{i}"] = f"{rid}/32"
        routers.append(
            Router(
                f"spine{i}",
                "spine",
                f"{ns}spine{i}",
                SPINE_ASN,
                rid,
                tuple(spine_nbrs[i]),
                (f"{rid}/32",),
            )
        )
    hosts: list[Host] = []
    for j in range(1, leaves + 1):
        rid = f"10.255.1.{j}"
        loopbacks[f"{ns}leaf{j}"] = f"{rid}/32"
        subnets = [f"10.{100 + j}.{k}" for k in range(1, hosts_per_leaf + 1)]
        routers.append(
            Router(
                f"leaf{j}",
                "leaf",
                f"{ns}leaf{j}",
                LEAF_ASN_BASE + j,
                rid,
                tuple(leaf_nbrs[j]),
                (f"{rid}/32", *(f"{s}.0/24" for s in subnets)),
            )
        )
        for k, subnet in enumerate(subnets, start=1):
            name = f"host{j}" if hosts_per_leaf == 1 else f"host{j}-{k}"
            hosts.append(Host(name, f"{ns}{name}", f"leaf{j}", f"{subnet}.10", f"{subnet}.1"))
            links.append(
                Link(
                    f"{ns}leaf{j}",
                    f"to-host{k}",
                    f"{subnet}.1/24",
                    f"{ns}{name}",
                    "eth0",
                    f"{subnet}.10/24",
                )
            )
    return Topology(fabric, tuple(routers), tuple(hosts), tuple(links), loopbacks)


def frr_config(router: Router) -> str:
    """The router's startup ``frr.conf``. Interface addresses are set by the lab with
    iproute2 (zebra learns them), so the file holds only what an operator would manage."""
    lines = [
        "frr defaults traditional",
        f"hostname {router.name}",
        f"log file /var/run/frr/{router.pathspace}/frr.log informational",
        "service integrated-vtysh-config",
        "!",
        f"router bgp {router.asn}",
        f" bgp router-id {router.router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        " timers bgp 1 3",
    ]
    for n in router.neighbors:
        lines += [
            f" neighbor {n.address} remote-as {n.asn}",
            f" neighbor {n.address} description {n.name}",
            f" neighbor {n.address} advertisement-interval 0",
            f" neighbor {n.address} timers connect 1",
        ]
    lines += [" !", " address-family ipv4 unicast"]
    lines += [f"  network {p}" for p in router.networks]
    lines += ["  maximum-paths 16", " exit-address-family", "exit", "!"]
    return "\n".join(lines) + "\n"


DAEMONS_FILE = """\
# Written by pitstop lab: the daemons of this pathspace only.
bgpd=yes
ospfd=no
ospf6d=no
ripd=no
ripngd=no
isisd=no
pimd=no
ldpd=no
nhrpd=no
eigrpd=no
babeld=no
sharpd=no
pbrd=no
bfdd=no
fabricd=no
vrrpd=no
pathd=no
vtysh_enable=yes
# -P 0: no TCP vty at all; the lab is reached through the pathspace's unix sockets.
zebra_options="-P 0"
bgpd_options="-P 0"
staticd_options="-P 0"
# watchfrr restarts a dead daemon within seconds, with its startup config.
watchfrr_options="--min-restart-interval 2 --max-restart-interval 10"
"""
