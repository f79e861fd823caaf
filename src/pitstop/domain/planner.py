"""The campaign planner: a pure function from devices and constraints to an ordered plan.

Taking many devices out of service within redundancy groups of capacity ``k_G``, with
dependencies and a global concurrency cap, is resource-constrained scheduling: NP-hard in
general (with every ``k = 1`` it is graph colouring). The planner therefore does two things:

* it computes a lower bound on the number of waves, the largest of
  ``max over G of ceil(|G| / k_G)``, the longest dependency chain and ``ceil(N / C)``, and
  reports its own wave count against it, so an operator sees how far from optimal a plan is;
* it builds the plan with a serial schedule-generation scheme: devices are taken once, in
  priority order, and each goes to the earliest wave in which every group it belongs to and
  the concurrency cap still have room and every predecessor is done. The priority is the
  longest remaining dependency path first; then the device's *level*, its rank among the
  members of its groups divided by the group's capacity, so that every rack advances evenly
  instead of the first racks filling the early waves and the last ones piling up at the end;
  then the most saturated groups first (``|G| / k_G``, a DSATUR-like tie-break).

Earliest-feasible-wave lookups use a "next wave with room" union-find per group, so a plan of
100k devices is one pass, not one scan of the ready set per wave.

Role rules (``leaf before spine``) become two virtual nodes per role (start, end) rather than
``|leaf| x |spine|`` edges; an empty role still links its neighbours, so the rules chain.

Waves are what the bound speaks about; the executor runs a sliding window over the priority
order instead of waiting at wave barriers. Invalid input raises ``CampaignInvalid`` with
every reason found (offline validation).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pitstop.domain.errors import CampaignInvalid


@dataclass(frozen=True, slots=True)
class PlanDevice:
    name: str
    role: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanRequest:
    devices: Sequence[PlanDevice]
    # Group name -> how many members may be out at once (Budget.slots already applied).
    capacities: Mapping[str, int]
    dependencies: Sequence[tuple[str, str]] = ()  # (before, after) device names
    role_order: Sequence[tuple[str, str]] = ()  # (before, after) roles
    concurrency: int = 1
    canary: int = 0


@dataclass(frozen=True, slots=True)
class LowerBound:
    groups: int
    chain: int
    concurrency: int
    # The group that sets the group term, for the report.
    tightest_group: str | None = None
    # With role rules (leaf before spine) every device of the earlier role finishes before any
    # of the later one starts, so the per-role bounds add up along the role order. Still a
    # valid lower bound, and tighter than the three terms alone.
    role_layers: int = 0

    @property
    def value(self) -> int:
        return max(self.groups, self.chain, self.concurrency, self.role_layers)


@dataclass(frozen=True, slots=True)
class Plan:
    waves: tuple[tuple[str, ...], ...]
    # Every device once: by wave, then by priority. The executor dispatches in this order.
    order: tuple[str, ...]
    lower_bound: LowerBound
    canary: tuple[str, ...]
    # Roles whose devices must all be done before a device of the key role may start.
    roles_before: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def wave_count(self) -> int:
        return len(self.waves)

    def wave_of(self) -> dict[str, int]:
        return {name: i for i, wave in enumerate(self.waves) for name in wave}


def _find(nxt: dict[int, int], w: int) -> int:
    """The first wave at or after ``w`` that is not marked full, compressing the path."""
    root = w
    while root in nxt:
        root = nxt[root]
    while w != root:
        nxt[w], w = root, nxt[w]
    return root


def _validate(req: PlanRequest) -> tuple[dict[str, int], dict[str, int], list[str]]:
    problems: list[str] = []
    index = {d.name: i for i, d in enumerate(req.devices)}
    if len(index) != len(req.devices):
        twice = Counter(d.name for d in req.devices)
        problems += [f"device {name} is listed twice" for name, k in twice.items() if k > 1]
    if req.concurrency < 1:
        problems.append(f"concurrency must be at least 1, not {req.concurrency}")
    if req.canary < 0:
        problems.append(f"canary must not be negative, not {req.canary}")
    sizes = dict(Counter(g for d in req.devices for g in d.groups))
    for g, size in sorted(sizes.items()):
        if g not in req.capacities:
            first = next(d.name for d in req.devices if g in d.groups)
            problems.append(f"device {first} is in group {g}, which has no capacity")
        elif req.capacities[g] < 1:
            names = [d.name for d in req.devices if g in d.groups]
            shown = ", ".join(names[:5]) + (" ..." if size > 5 else "")
            problems.append(
                f"group {g} allows no device out of service (max_unavailable 0) "
                f"but has {size} member(s) in the campaign: {shown}"
            )
    for before, after in req.dependencies:
        for name in (before, after):
            if name not in index:
                problems.append(f"dependency {before} before {after}: unknown device {name}")
        if before == after:
            problems.append(f"dependency {before} before {after}: a device cannot precede itself")
    return index, sizes, problems


class _Graph:
    """Devices 0..n-1 and virtual role nodes after them; virtual nodes weigh no wave."""

    def __init__(self, req: PlanRequest, index: Mapping[str, int]) -> None:
        n = len(req.devices)
        self.n = n
        self.labels: list[str] = [d.name for d in req.devices]
        self.succ: list[list[int]] = [[] for _ in range(n)]
        self.pred: list[list[int]] = [[] for _ in range(n)]
        for before, after in req.dependencies:
            self._edge(index[before], index[after])
        role_nodes: dict[str, tuple[int, int]] = {}
        for before, after in req.role_order:
            for role in (before, after):
                if role not in role_nodes:
                    start, end = (
                        self._virtual(f"start of role {role}"),
                        self._virtual(f"end of role {role}"),
                    )
                    self._edge(start, end)
                    role_nodes[role] = (start, end)
            self._edge(role_nodes[before][1], role_nodes[after][0])
        succ, pred = self.succ, self.pred
        for i, d in enumerate(req.devices):
            if d.role in role_nodes:
                start, end = role_nodes[d.role]
                succ[start].append(i)
                pred[i].append(start)
                succ[i].append(end)
                pred[end].append(i)
        self.role_nodes = role_nodes

    def _virtual(self, label: str) -> int:
        self.labels.append(label)
        self.succ.append([])
        self.pred.append([])
        return len(self.labels) - 1

    def _edge(self, a: int, b: int) -> None:
        self.succ[a].append(b)
        self.pred[b].append(a)

    def topological(self) -> list[int] | list[str]:
        """A topological order, or the labels along one cycle."""
        indeg = [len(p) for p in self.pred]
        queue = [v for v, k in enumerate(indeg) if k == 0]
        for v in queue:  # the list grows while iterated: Kahn's algorithm
            for s in self.succ[v]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    queue.append(s)
        if len(queue) == len(indeg):
            return queue
        return self._cycle({v for v, k in enumerate(indeg) if k > 0})

    def _cycle(self, left: set[int]) -> list[str]:
        # Every node left has a predecessor left, so walking back must revisit one.
        v = next(iter(left))
        seen: dict[int, int] = {}
        path: list[int] = []
        while v not in seen:
            seen[v] = len(path)
            path.append(v)
            v = next(p for p in self.pred[v] if p in left)
        loop = path[seen[v] :][::-1]
        return [self.labels[x] for x in [*loop, loop[0]]]


def lower_bound(
    req: PlanRequest, *, chain: int, sizes: Mapping[str, int] | None = None
) -> LowerBound:
    if sizes is None:
        counted: dict[str, int] = {}
        for d in req.devices:
            for g in d.groups:
                counted[g] = counted.get(g, 0) + 1
        sizes = counted
    best, tightest = 0, None
    for g, size in sorted(sizes.items()):
        waves = math.ceil(size / req.capacities[g])
        if waves > best:
            best, tightest = waves, g
    n = len(req.devices)
    conc = math.ceil(n / req.concurrency) if n else 0
    return LowerBound(best, chain, conc, tightest, _role_layers(req))


def _role_layers(req: PlanRequest) -> int:
    if not req.role_order:
        return 0
    ordered = {r for rule in req.role_order for r in rule}
    members = Counter(d.role for d in req.devices)
    per_group = Counter((d.role, g) for d in req.devices if d.role in ordered for g in d.groups)
    by_group: dict[str, int] = {}
    for (role, g), count in per_group.items():
        by_group[role] = max(by_group.get(role, 0), math.ceil(count / req.capacities[g]))

    def alone(role: str) -> int:
        return max(by_group.get(role, 0), math.ceil(members[role] / req.concurrency))

    direct: dict[str, set[str]] = {}
    for before, after in req.role_order:
        direct.setdefault(after, set()).add(before)
    memo: dict[str, int] = {}

    def layer(role: str) -> int:
        # Only called once the ordering is known to be acyclic.
        if role not in memo:
            memo[role] = alone(role) + max((layer(p) for p in direct.get(role, ())), default=0)
        return memo[role]

    return max(layer(r) for r in ordered)


def _roles_before(req: PlanRequest) -> dict[str, tuple[str, ...]]:
    direct: dict[str, set[str]] = {}
    for before, after in req.role_order:
        direct.setdefault(after, set()).add(before)
    closure: dict[str, tuple[str, ...]] = {}
    for role in direct:
        seen: set[str] = set()
        stack = list(direct[role])
        while stack:
            r = stack.pop()
            if r not in seen:
                seen.add(r)
                stack.extend(direct.get(r, ()))
        closure[role] = tuple(sorted(seen))
    return closure


def _priority(req: PlanRequest, remaining: list[int], sizes: Mapping[str, int]) -> list[int]:
    devices, n, cap, capacity = req.devices, len(req.devices), req.concurrency, req.capacities
    pressure = {g: size / capacity[g] for g, size in sizes.items()}
    saturation = [max([pressure[g] for g in d.groups], default=0.0) for d in devices]
    base = sorted(range(n), key=lambda i: (-remaining[i], -saturation[i], devices[i].name))
    position = [0] * n
    for pos, i in enumerate(base):
        position[i] = pos
    # A group at least as wide as the cap never binds on its own; its ranks would only
    # reintroduce the name order the levels are there to break.
    binding = {g: capacity[g] for g in sizes if capacity[g] < cap}
    level = [0] * n
    seen_in: dict[str, int] = dict.fromkeys(binding, 0)
    for i in base:
        top = 0
        for g in devices[i].groups:
            k = binding.get(g)
            if k is not None:
                r = seen_in[g]
                seen_in[g] = r + 1
                if r // k > top:
                    top = r // k
        level[i] = top
    # A predecessor always has a strictly longer remaining path than its successor, so this
    # order is also a topological order of the devices.
    return sorted(base, key=lambda i: (-remaining[i], level[i], position[i]))


def _assign(
    req: PlanRequest,
    graph: _Graph,
    priority: list[int],
    canary: list[int],
    sizes: Mapping[str, int],
) -> list[int]:
    """Each device, in priority order, to the earliest wave with room for it."""
    n, devices, pred = graph.n, req.devices, graph.pred
    wave = [-1] * n
    finish_virtual: dict[int, int] = {}
    group_count: dict[str, dict[int, int]] = {g: {} for g in sizes}
    group_full: dict[str, dict[int, int]] = {g: {} for g in sizes}
    total: dict[int, int] = {}
    total_full: dict[int, int] = {}
    cap, capacity = req.concurrency, req.capacities

    def finish(v: int) -> int:
        if v < n:
            return wave[v]
        if v not in finish_virtual:
            finish_virtual[v] = max([finish(p) for p in pred[v]], default=-1)
        return finish_virtual[v]

    canary_set = set(canary)
    floor = 0
    for i in [*canary, *(i for i in priority if i not in canary_set)]:
        if floor == 0 and canary and i not in canary_set:
            floor = max(wave[c] for c in canary) + 1
        w = floor
        for p in pred[i]:
            f = (wave[p] if p < n else finish(p)) + 1
            if f > w:
                w = f
        groups = devices[i].groups
        while True:
            start = w
            w = _find(total_full, w)
            for g in groups:
                w = _find(group_full[g], w)
            if w == start:
                break
        wave[i] = w
        t = total.get(w, 0) + 1
        total[w] = t
        if t >= cap:
            total_full[w] = w + 1
        for g in groups:
            counts = group_count[g]
            c = counts.get(w, 0) + 1
            counts[w] = c
            if c >= capacity[g]:
                group_full[g][w] = w + 1
    return wave


def plan(req: PlanRequest) -> Plan:
    """Plan a campaign, or raise ``CampaignInvalid`` listing every reason it cannot run."""
    index, sizes, problems = _validate(req)
    if problems:
        raise CampaignInvalid("the campaign cannot be planned", reasons=problems)
    graph = _Graph(req, index)
    topo = graph.topological()
    if topo and isinstance(topo[0], str):
        cycle = " -> ".join(str(x) for x in topo)
        raise CampaignInvalid(
            f"the ordering has a cycle: {cycle}", reasons=[f"dependency cycle: {cycle}"]
        )
    order_nodes: list[int] = [int(x) for x in topo]
    n = graph.n
    # Longest remaining path, counted in devices (virtual nodes weigh nothing).
    remaining = [0] * len(graph.labels)
    succ = graph.succ
    for v in reversed(order_nodes):
        tail = 0
        for x in succ[v]:
            if remaining[x] > tail:
                tail = remaining[x]
        remaining[v] = tail + 1 if v < n else tail
    bound = lower_bound(req, chain=max(remaining[:n], default=0), sizes=sizes)
    priority = _priority(req, remaining, sizes)
    has_ancestor = [False] * len(graph.labels)
    for v in order_nodes:
        if v < n or has_ancestor[v]:
            for x in succ[v]:
                has_ancestor[x] = True
    canary = [i for i in priority if not has_ancestor[i]][: req.canary]
    wave = _assign(req, graph, priority, canary, sizes)
    devices = req.devices
    buckets: list[list[str]] = [[] for _ in range(max(wave, default=-1) + 1)]
    for i in priority:
        buckets[wave[i]].append(devices[i].name)
    waves = tuple(tuple(b) for b in buckets if b)
    present = {d.role for d in devices}
    warnings = tuple(
        f"role {r} in the ordering has no device in the campaign"
        for r in sorted(graph.role_nodes)
        if r not in present
    )
    return Plan(
        waves=waves,
        order=tuple(name for w in waves for name in w),
        lower_bound=bound,
        canary=tuple(devices[i].name for i in canary),
        roles_before=_roles_before(req),
        warnings=warnings,
    )
