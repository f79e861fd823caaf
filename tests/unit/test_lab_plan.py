"""The lab's plan (names, addresses, FRR configuration, inventory) and its refusals, without
building anything: these run on any machine."""

from __future__ import annotations

import pytest

from pitstop.lab import host
from pitstop.lab.fabric import up
from pitstop.lab.host import LabError
from pitstop.lab.inventory import inventory
from pitstop.lab.topology import PREFIX, frr_config, plan


def test_every_name_the_lab_creates_carries_the_prefix_and_the_fabric() -> None:
    topo = plan(fabric="lab", spines=2, leaves=4, hosts_per_leaf=2)
    assert len(topo.spines) == 2 and len(topo.leaves) == 4 and len(topo.hosts) == 8
    assert all(ns.startswith(f"{PREFIX}lab-") for ns in topo.namespaces())
    assert len(set(topo.namespaces())) == len(topo.namespaces())
    # Interface names fit Linux's 15 bytes.
    assert all(len(n) <= 15 for link in topo.links for n in (link.a_if, link.b_if))


def test_spines_share_an_as_and_each_leaf_has_its_own() -> None:
    topo = plan(spines=2, leaves=3)
    assert {r.asn for r in topo.spines} == {65000}
    assert [r.asn for r in topo.leaves] == [65101, 65102, 65103]
    leaf2 = topo.router("leaf2")
    assert [(n.name, n.address) for n in leaf2.neighbors] == [
        ("spine1", "10.200.1.2"),
        ("spine2", "10.200.2.2"),
    ]
    assert leaf2.networks == ("10.255.1.2/32", "10.102.1.0/24")


def test_the_frr_config_has_fast_timers_and_ecmp() -> None:
    config = frr_config(plan().router("spine1"))
    assert " timers bgp 1 3" in config
    assert " neighbor 10.200.1.1 advertisement-interval 0" in config
    assert "  maximum-paths 16" in config
    assert "log file /var/run/frr/psl-lab-spine1/frr.log informational" in config


def test_the_inventory_registers_routers_with_their_peers_namespaces() -> None:
    doc = inventory(plan(spines=2, leaves=2))
    fabric = doc["fabrics"][0]
    assert fabric["groups"] == [
        {"name": "spines", "max_unavailable": 1, "description": "Spine layer of the lab"}
    ]
    spine1 = next(d for d in fabric["devices"] if d["name"] == "spine1")
    assert spine1["driver"] == "frr" and spine1["groups"] == ["spines"]
    assert spine1["connection"]["options"] == {
        "netns": "psl-lab-spine1",
        "pathspace": "psl-lab-spine1",
        "peers": "psl-lab-leaf1,psl-lab-leaf2",
    }
    assert [d["name"] for d in fabric["devices"]] == ["spine1", "spine2", "leaf1", "leaf2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fabric": "Lab"}, "fabric name 'Lab'"),
        ({"fabric": "toolong7"}, "fabric name 'toolong7'"),
        ({"spines": 0}, "--spines must be between 1 and 8, got 0"),
        ({"leaves": 1}, "--leaves must be between 2 and 64, got 1"),
        ({"hosts_per_leaf": 9}, "--hosts-per-leaf must be between 0 and 8, got 9"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_built(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(LabError, match=message) as err:
        up(**kwargs)  # type: ignore[arg-type]
    assert err.value.code == "LAB_BAD_ARGUMENT"


def test_without_root_the_lab_refuses_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="the lab needs root") as err:
        host.preflight()
    assert err.value.code == "LAB_NEEDS_ROOT"


def test_without_frr_the_lab_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    monkeypatch.setattr(host, "FRR_BIN", host.Path("/nonexistent/frr"))
    with pytest.raises(LabError, match="apt-get install frr") as err:
        host.preflight()
    assert err.value.code == "LAB_MISSING_TOOL"
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    with pytest.raises(LabError, match="apt-get install iproute2"):
        host.preflight()
