"""Reading FRR 8.4's JSON and the kernel's counters, on output captured from a lab router
(``frr_samples/``), and turning a diversion method into configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pitstop.domain.errors import DriverError
from pitstop.drivers.frr import diversion, parsing

SAMPLES = Path(__file__).parent / "frr_samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_bgp_summary_gives_every_peer_with_its_counters() -> None:
    peers = parsing.bgp_peers(json.loads(sample("spine_bgp_summary.json")))
    assert [p.peer for p in peers] == ["10.200.1.1", "10.200.1.3"]
    first = peers[0]
    assert first.up and first.state == "Established"
    assert (first.established, first.dropped) == (1, 0)
    assert first.prefixes_received == 2 and first.prefixes_sent == 5
    assert first.uptime_s > 0


def test_a_peer_shut_on_the_far_side_is_down() -> None:
    peers = parsing.bgp_peers(json.loads(sample("spine_bgp_summary_peer_down.json")))
    down = [p.peer for p in peers if not p.up]
    assert down == ["10.200.1.1"]


def test_forwarded_datagrams_is_the_transit_counter() -> None:
    text = sample("spine_proc_net_snmp.txt")
    head, values = [ln for ln in text.splitlines() if ln.startswith("Ip:")][:2]
    expected = int(dict(zip(head.split(), values.split(), strict=True))["ForwDatagrams"])
    assert parsing.forwarded_datagrams(text) == expected
    v6 = text + "\nIp6OutForwDatagrams              \t7\n"
    assert parsing.forwarded_datagrams(v6) == expected + 7


def test_no_forwarding_counter_is_an_error_not_zero() -> None:
    with pytest.raises(DriverError, match="ForwDatagrams"):
        parsing.forwarded_datagrams("Tcp: a b\nTcp: 1 2\n")


def test_ip_link_counters_skip_the_loopback() -> None:
    counters = parsing.interface_counters(json.loads(sample("spine_ip_link.json")))
    assert [c.name for c in counters] == ["to-leaf1", "to-leaf2"]
    assert all(c.oper_up for c in counters)
    assert all(c.rx_packets > 0 and c.tx_packets > 0 for c in counters)


def test_gshut_path_is_de_preferred_and_the_restored_one_is_not() -> None:
    spine1 = {"10.200.1.0"}
    drained = parsing.prefix_paths(json.loads(sample("leaf_prefix_gshut.json")))
    assert parsing.depreference(drained, spine1) == (
        "its path carries the graceful-shutdown community"
    )
    restored = parsing.prefix_paths(json.loads(sample("leaf_prefix_restored.json")))
    ours = [p for p in restored if p.peer in spine1]
    # Not best again (BGP keeps the older path on a tie), and still not de-preferred.
    assert ours and not ours[0].best
    assert parsing.depreference(restored, spine1) is None


def test_longer_as_path_and_lower_local_pref_are_de_preferred() -> None:
    def path(peer: str, lp: int = 100, hops: int = 2) -> parsing.PathView:
        return parsing.PathView(peer, True, False, lp, hops, 0, False)

    assert parsing.depreference((path("a", hops=5), path("b")), {"a"}) == ("AS path of 5 hops > 2")
    assert parsing.depreference((path("a", lp=50), path("b")), {"a"}) == (
        "local-preference 50 < 100"
    )
    assert parsing.depreference((path("b"),), {"a"}) == "no path from the device"


def test_prefixes_from_finds_the_paths_learned_from_a_device() -> None:
    table = json.loads(sample("leaf_bgp_table.json"))
    assert parsing.prefixes_from(table, {"10.200.1.0"}) == (
        "10.102.1.0/24",
        "10.255.0.1/32",
        "10.255.1.2/32",
    )


def test_several_json_documents_in_one_answer() -> None:
    assert parsing.loads_many('{"a": 1}\n{"b": 2}\n', "x") == [{"a": 1}, {"b": 2}]
    with pytest.raises(DriverError, match="not JSON"):
        parsing.loads_many('{"a": 1} % bgpd is not running', "x")


def test_cpu_and_memory_from_proc() -> None:
    a = parsing.cpu_times("cpu  100 0 100 800 0 0 0 0 0 0\n")
    b = parsing.cpu_times("cpu  150 0 150 1700 0 0 0 0 0 0\n")
    assert parsing.cpu_idle_pct(a, b) == 90.0
    assert parsing.memory_used_pct("MemTotal: 1000 kB\nMemAvailable: 250 kB\n") == 75.0


def test_vtysh_errors_are_found_in_its_output() -> None:
    assert parsing.vtysh_problem("% Unknown command: frobnicate") == "% Unknown command: frobnicate"
    assert parsing.vtysh_problem("") is None


# --- diversion ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", diversion.BGP_METHODS)
def test_each_bgp_method_is_detected_after_its_commands(method: str) -> None:
    config = sample("spine_running_config.txt")
    assert not diversion.present(config, method)
    plan = diversion.apply_plan(config, method, device="spine1")
    assert plan.commands and not plan.present
    assert any("65000" in c for c in plan.commands)
    assert diversion.remove_plan(config, method, device="spine1").commands == ()


def test_prepend_goes_to_every_neighbor_and_is_removed_with_its_route_map() -> None:
    config = sample("spine_running_config.txt")
    plan = diversion.apply_plan(config, "as-path-prepend", device="spine1", prepend=2)
    assert "set as-path prepend 65000 65000" in plan.commands
    assert "neighbor 10.200.1.1 route-map PSL-MAINT-PREPEND out" in plan.commands
    assert "neighbor 10.200.1.3 route-map PSL-MAINT-PREPEND out" in plan.commands
    diverted = (
        config.replace(
            "  maximum-paths 16\n",
            "  maximum-paths 16\n  neighbor 10.200.1.1 route-map PSL-MAINT-PREPEND out\n",
        )
        + "route-map PSL-MAINT-PREPEND permit 10\n set as-path prepend 65000 65000\nexit\n"
    )
    removal = diversion.remove_plan(diverted, "as-path-prepend", device="spine1")
    assert "no neighbor 10.200.1.1 route-map PSL-MAINT-PREPEND out" in removal.commands
    assert removal.commands[-1] == "no route-map PSL-MAINT-PREPEND"


def test_prepend_refuses_to_replace_an_operator_route_map() -> None:
    config = sample("spine_running_config.txt").replace(
        "  maximum-paths 16\n", "  maximum-paths 16\n  neighbor 10.200.1.3 route-map EXPORT out\n"
    )
    with pytest.raises(DriverError, match=r"10\.200\.1\.3 \(EXPORT\)"):
        diversion.apply_plan(config, "as-path-prepend", device="spine1")


def test_igp_methods_are_offered_only_for_the_labelled_igp() -> None:
    assert diversion.methods_for({}) == diversion.BGP_METHODS
    assert diversion.methods_for({"frr.igp": "isis"})[-1] == "isis-overload"
    assert diversion.methods_for({"frr.igp": "ospf,isis"})[-2:] == (
        "ospf-max-metric",
        "isis-overload",
    )


def test_isis_overload_and_ospf_max_metric_are_generated_in_their_blocks() -> None:
    config = "router isis core\n net 49.0001.0000.0000.0001.00\nexit\nrouter ospf\nexit\n"
    isis = diversion.apply_plan(config, "isis-overload", device="r1")
    assert isis.commands == ("router isis core", "set-overload-bit")
    ospf = diversion.apply_plan(config, "ospf-max-metric", device="r1")
    assert ospf.commands == ("router ospf", "max-metric router-lsa administrative")
    applied = "router isis core\n set-overload-bit\nexit\n"
    assert diversion.present(applied, "isis-overload")
    assert diversion.remove_plan(applied, "isis-overload", device="r1").commands == (
        "router isis core",
        "no set-overload-bit",
    )
    with pytest.raises(DriverError, match="no 'router ospf'"):
        diversion.apply_plan("router isis core\nexit\n", "ospf-max-metric", device="r1")


def test_no_router_bgp_cannot_be_diverted() -> None:
    with pytest.raises(DriverError, match="no 'router bgp'"):
        diversion.apply_plan("hostname r1\n", "graceful-shutdown", device="r1")
