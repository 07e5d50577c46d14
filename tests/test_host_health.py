"""vSphere 7's host duties (#34): host health (Proactive HA's quarantine and maintenance) and network-aware
placement -- a degraded host or one whose NICs are busier than the limit receives no VM, in every planner and
in `place`; a severe host is evacuated; a quarantined host's VMs leave where it costs no rule nor capacity."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balancer.app.host_health import host_health_request
from balancer.config import Config
from balancer.config.plan_options import health_overrides, plan_options
from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.placement import place_vm
from balancer.snapshot import parse_snapshot
from balancer.snapshot.vmspec import VmSpec
from test_engine_properties import SETTINGS, assert_order_of_obligations, clusters


def host(name, cpu=20000.0, mem=65536.0, **kw):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, **kw}


def vm(name, h, cpu=1000.0, mem=2000.0, **kw):
    return {"name": name, "host": h, "vcpus": 2, "mem_mb": 4096.0, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def snap(hosts, vms, **kw):
    return parse_snapshot({"version": 6, "cluster": "c", "hosts": hosts, "vms": vms, **kw})


def on_vcenter(drs: dict) -> Config:
    """A config of a vCenter cluster (its hosts' names known only when it is read) with this drs section."""
    return Config.model_validate({"source": "vcenter", "drs": drs, "vcenter": {
        "host": "vc.example", "user": "u", "cluster": "c", "password_env": "VC_PASSWORD"}})


def skewed(**empty):
    """a carries 9 VMs at 90 % CPU, b 1 VM; c is empty (balancing would love it)."""
    return snap([host("a"), host("b"), host("c", **empty)],
                [vm(f"v{i}", "a", cpu=2000.0) for i in range(9)] + [vm("w", "b")])


@pytest.mark.parametrize("planner", ["cp-sat", "greedy"])
@pytest.mark.parametrize("empty", [dict(health="moderate"), dict(health="severe"),
                                   dict(nic_mbps=20000.0, net_rx_mbps=17000.0, net_tx_mbps=1000.0)])
def test_a_degraded_or_busy_host_receives_no_vm(planner, empty):
    free = make_plan(skewed(), PlanOptions(planner=planner, time_limit_s=1))
    assert any(m.target == "c" for m in free.moves)  # without the duty, balancing sends VMs to c
    plan = make_plan(skewed(**empty), PlanOptions(planner=planner, time_limit_s=1))
    assert plan.status == "ok" and all(m.target != "c" for m in plan.moves)
    assert any(n.startswith("c: ") for n in plan.notes), plan.notes
    if empty.get("health") == "severe":  # this plan is its maintenance (it is empty: nothing to move)
        assert plan.moves == [] and [(p.host, p.action) for p in plan.power] == [("c", "enter-maintenance")]
        plan = make_plan(skewed(**empty), PlanOptions(planner=planner, time_limit_s=1, health_remediation="quarantine"))
    assert plan.moves and all(m.target != "c" for m in plan.moves)


def test_the_network_limit_is_configurable_and_may_be_off():
    busy = dict(nic_mbps=20000.0, net_rx_mbps=15000.0, net_tx_mbps=1000.0)  # 75 %
    assert any(m.target == "c" for m in make_plan(skewed(**busy), PlanOptions(time_limit_s=1)).moves)
    assert all(m.target != "c" for m in make_plan(skewed(**busy), PlanOptions(time_limit_s=1,
                                                                                 max_network_utilization=0.7)).moves)
    over = dict(nic_mbps=20000.0, net_tx_mbps=19000.0)
    assert any(m.target == "c" for m in make_plan(skewed(**over), PlanOptions(time_limit_s=1,
                                                                                max_network_utilization=None)).moves)


def test_place_refuses_a_degraded_host_and_says_why():
    s = skewed(health="moderate", health_reason="fan 3 failed")
    p = place_vm(s, VmSpec(name="new", vcpus=1, mem_mb=1024.0, cpu_demand_mhz=100.0))
    refused = {r.host: r.why for r in p.rejected}
    assert "c" in refused and "health moderate (health provider: fan 3 failed)" in refused["c"]
    assert p.hosts and all(c.host != "c" for c in p.hosts)
    busy = place_vm(skewed(nic_mbps=20000.0, net_tx_mbps=18000.0), VmSpec(name="new", vcpus=1, mem_mb=1024.0,
                                                                          cpu_demand_mhz=100.0))
    assert "above the 80 % network limit" in {r.host: r.why for r in busy.rejected}["c"]
    assert busy.hosts and all(c.host != "c" for c in busy.hosts)


def test_a_severe_host_is_evacuated_and_enters_maintenance_with_its_reason():
    s = snap([host("a"), host("b"), host("c", health="severe", health_reason="PSU 1 failed")],
             [vm("v1", "a"), vm("v2", "c"), vm("v3", "c", automation="disabled"),
              vm("off", "c", powered_on=False)])
    plan = make_plan(s, PlanOptions(time_limit_s=1))
    assert {m.vm for m in plan.moves} == {"v2", "v3", "off"}  # every VM registered on it, nothing else
    assert all(m.reason == "evacuate" and m.mandatory and "health severe (health provider: PSU 1 failed)" in m.detail
               for m in plan.moves)
    assert [(p.host, p.action) for p in plan.power] == [("c", "enter-maintenance")]
    assert plan.power[0].step == len(plan.moves) + 1 and "PSU 1 failed" in plan.power[0].detail
    # quarantine for every state: no maintenance, the VMs that may move leave (v3 is disabled: it stays)
    q = make_plan(s, PlanOptions(time_limit_s=1, health_remediation="quarantine"))
    assert q.power == [] and {m.vm for m in q.moves} == {"v2"} and not q.moves[0].mandatory
    assert "c is quarantined: health severe" in q.moves[0].detail
    # off: health ignored
    assert make_plan(s, PlanOptions(time_limit_s=1, health_remediation="off")).moves == []


def test_a_severe_host_that_cannot_be_emptied_is_quarantined_instead():
    s = snap([host("a", cpu=4000.0), host("c", health="severe")],
             [vm("v1", "a", cpu=3000.0), vm("v2", "c", cpu=3000.0)])
    plan = make_plan(s, PlanOptions(time_limit_s=1))
    assert plan.status == "ok" and plan.moves == [] and plan.power == []
    assert any("cannot be evacuated" in n and "quarantined instead" in n for n in plan.notes), plan.notes


def test_quarantine_moves_nothing_that_costs_a_rule():
    # v2 should run on c (a should-rule): moving it off c would break it, so it stays; v3 has no rule and leaves
    s = snap([host("a"), host("b"), host("c", health="moderate")],
             [vm("v1", "a"), vm("v2", "c"), vm("v3", "c")],
             vm_groups={"g": ["v2"]}, host_groups={"hg": ["c"]},
             rules=[{"name": "on-c", "type": "vm-host", "vm_group": "g", "host_group": "hg", "affine": True}])
    plan = make_plan(s, PlanOptions(time_limit_s=1))
    assert plan.status == "ok" and plan.moves == [], [m.vm for m in plan.moves]
    assert any("would break rule on-c" in n for n in plan.notes), plan.notes
    alone = snap([host("a"), host("b"), host("c", health="moderate")], [vm("v1", "a"), vm("v3", "c")])
    plan = make_plan(alone, PlanOptions(time_limit_s=1))
    assert [m.vm for m in plan.moves] == ["v3"] and plan.moves[0].reason == "evacuate"


BUSY = dict(nic_mbps=10000.0, net_rx_mbps=9000.0)  # 90 % > the 80 % limit


@pytest.mark.parametrize("shut", [dict(health="moderate"), dict(health="severe"), BUSY])
def test_dpm_does_not_wake_a_host_that_would_receive_no_vm(shut):
    from balancer.engine.options import DpmOptions

    def rising(**h2):  # 17,000 MHz on 20,000: above DPM's 81 % band edge; h2 and h3 in standby
        return snap([host("h0", cpu=10000.0), host("h1", cpu=10000.0), host("h2", cpu=10000.0, state="standby", **h2),
                     host("h3", cpu=10000.0, state="standby")],
                    [vm(f"v{i}-{j}", f"h{i}", cpu=1700.0, mem=800.0) for i in range(2) for j in range(5)])

    dpm = PlanOptions(time_limit_s=1, dpm=DpmOptions(max_standby=None))
    assert [(p.host, p.action) for p in make_plan(rising(), dpm).power] == [("h2", "power-on")]  # the first choice
    plan = make_plan(rising(**shut), dpm)
    assert [(p.host, p.action) for p in plan.power] == [("h3", "power-on")] and all(m.target != "h2" for m in plan.moves)
    alone = snap([host("h0", cpu=10000.0), host("h1", cpu=10000.0), host("h2", cpu=10000.0, state="standby", **shut)],
                 [vm(f"v{i}-{j}", f"h{i}", cpu=1700.0, mem=800.0) for i in range(2) for j in range(5)])
    plan = make_plan(alone, dpm)
    assert plan.power == [] and any("no standby host can be powered on (h2: " in n for n in plan.notes), plan.notes


@pytest.mark.parametrize("shut", [dict(health="moderate"), BUSY])
def test_a_maintenance_evacuation_sends_no_vm_to_a_host_that_receives_none(shut):
    s = snap([host("a"), host("b", mem=16384.0), host("c", **shut)], [vm(f"v{i}", "a") for i in range(6)])
    plan = make_plan(s, PlanOptions(time_limit_s=1, evacuate=("a",), health_remediation="quarantine"))
    assert plan.status == "ok" and {m.vm for m in plan.moves} == {f"v{i}" for i in range(6)}
    assert {m.target for m in plan.moves} == {"b"}  # c would have the room; it is closed
    crowded = snap([host("a"), host("b", mem=8192.0), host("c", **shut)], [vm(f"v{i}", "a") for i in range(6)])
    plan = make_plan(crowded, PlanOptions(time_limit_s=1, evacuate=("a",), health_remediation="quarantine"))
    assert all(m.target != "c" for m in plan.moves)


def test_config_and_api_overrides_win_over_the_providers():
    s = skewed(health="severe")
    cfg = on_vcenter({"host_health": {"c": {"state": "healthy", "reason": "replaced PSU"}}})
    options = plan_options(cfg)
    assert options.health_overrides == (("c", "healthy", "set in the config: replaced PSU"),)
    assert any(m.target == "c" for m in make_plan(s, options).moves)
    api = health_overrides(cfg, {"c": ("moderate", "monitoring: ECC errors")})
    assert api == (("c", "moderate", "set through the API: monitoring: ECC errors"),)


class _Runner:
    def __init__(self, s):
        self.name, self.last_seen, self.health_api = "c", (s, {}), {}


def test_the_http_api_sets_and_clears_a_hosts_health_and_refuses_bad_input_in_one_line():
    r = _Runner(skewed(health="moderate", health_reason="fan"))
    code, answer = host_health_request([r], json.dumps({"host": "b", "state": "severe", "reason": "ECC"}).encode(), "")
    assert code == 200 and r.health_api == {"b": ("severe", "ECC")}
    assert answer["clusters"]["c"]["providers"] == {"c": {"state": "moderate", "reason": "fan"}}
    assert host_health_request([r], json.dumps({"host": "b", "state": None}).encode(), "")[0] == 200 and not r.health_api
    for body in (b'{"host": "zz", "state": "severe"}', b'{"host": "b", "state": "grey"}', b"[", b'{"host": "b"}',
                 json.dumps({"host": "b", "state": "severe", "reason": "x" * 5000}).encode()):
        code, answer = host_health_request([r], body, "")
        assert code == 400 and "\n" not in answer["error"] and len(answer["error"]) <= 300, answer
    assert host_health_request([r], b"", "")[0] == 200


def test_a_host_the_cluster_does_not_have_is_named():
    """A misspelt host in drs.host_health: refused by name where the config names the hosts (the simulated
    cluster), and named in every plan where only the cluster knows them (vCenter), never silently ignored."""
    from balancer.config import parse_config
    from balancer.errors import InputError

    with pytest.raises(InputError, match=r"drs.host_health: unknown host 'esx9' \(the simulated cluster's hosts are esx01"):
        parse_config({"drs": {"host_health": {"esx9": {"state": "severe", "reason": "PSU failed"}}}})
    plan = make_plan(skewed(), plan_options(on_vcenter({"host_health": {"cc": {"state": "severe"}}})))
    assert "host health is set for host cc, which is not in cluster c (its hosts: a, b, c): nothing is done for it" \
        in plan.notes
    assert not plan.power


def test_a_bad_config_value_is_refused():
    from pydantic import ValidationError

    for drs in ({"health_remediation": "sometimes"}, {"max_network_utilization": 1.5},
                {"host_health": {"esx01": {"state": "grey"}}}, {"host_health": {"esx9": {"state": "severe"}}}):
        with pytest.raises(ValidationError):
            Config.model_validate({"drs": drs})


@st.composite
def degraded(draw):
    s = draw(clusters())
    doc = s.model_dump(mode="json", exclude_none=True)
    doc["version"] = 6
    for h in doc["hosts"]:
        kind = draw(st.sampled_from(["none"] * 4 + ["moderate", "severe", "busy"]))
        if kind in ("moderate", "severe"):
            h["health"] = kind
        elif kind == "busy":
            h.update(nic_mbps=10000.0, net_rx_mbps=float(draw(st.integers(8100, 10000))))
    return parse_snapshot(doc)


@SETTINGS
@given(degraded(), st.integers(1, 5), st.sampled_from(["cp-sat", "greedy"]),
       st.sampled_from(["quarantine", "mixed", "maintenance"]))
def test_no_plan_sends_a_vm_to_a_degraded_or_busy_host_nor_breaks_an_obligation(s, threshold, planner, how):
    options = PlanOptions(threshold=threshold, planner=planner, time_limit_s=0.5, health_remediation=how)
    plan = make_plan(s, options)
    closed = {h.name for h in s.hosts if h.health in ("moderate", "severe")
              or (h.net_utilisation or 0.0) > 0.8}
    assert all(m.target not in closed for m in plan.moves)
    if plan.status == "ok":
        assert_order_of_obligations(plan)
    evacuated = {p.host for p in plan.power if p.action == "enter-maintenance"}
    assert len(evacuated) <= 1 and all(s.host(h).health == "severe" for h in evacuated if how != "maintenance")


def test_the_vmotion_network_speed_is_the_slowest_link_behind_the_vmotion_vmknic():
    from types import SimpleNamespace as O

    from balancer.sources.vcenter.collector import host_network

    network = O(pnic=[O(key="key-vim.host.PhysicalNic-vmnic0", linkSpeed=O(speedMb=10000)),
                      O(key="key-vim.host.PhysicalNic-vmnic1", linkSpeed=O(speedMb=25000)),
                      O(key="key-vim.host.PhysicalNic-vmnic2", linkSpeed=O(speedMb=25000)),
                      O(key="key-vim.host.PhysicalNic-vmnic3", linkSpeed=None)],  # no link
                vnic=[O(device="vmk0", key="key-vim.host.VirtualNic-vmk0", portgroup="Management Network"),
                      O(device="vmk1", key="key-vim.host.VirtualNic-vmk1", portgroup="vMotion")],
                portgroup=[O(spec=O(name="Management Network", vswitchName="vSwitch0")),
                           O(spec=O(name="vMotion", vswitchName="vSwitch1"))],
                vswitch=[O(name="vSwitch0", pnic=["key-vim.host.PhysicalNic-vmnic0"]),
                         O(name="vSwitch1", pnic=["key-vim.host.PhysicalNic-vmnic1", "key-vim.host.PhysicalNic-vmnic2"])])
    vnics = O(netConfig=[O(nicType="management", selectedVnic=["management.key-vim.host.VirtualNic-vmk0"]),
                         O(nicType="vmotion", selectedVnic=["vmotion.key-vim.host.VirtualNic-vmk1"])])
    out = host_network(network, vnics, {"net.received.average": 1200.0, "net.transmitted.average": 300.0})
    assert out == {"nic_mbps": 60000.0, "net_rx_mbps": 1200.0, "net_tx_mbps": 300.0, "vmotion_mbps": 25000.0}
    assert host_network(network, O(netConfig=[]), {}) == {"nic_mbps": 60000.0}  # no vMotion NIC, no counters
    assert host_network(None, None, {}) == {}


# --- vCenter's health update providers (sources/vcenter/health.py) --------------------------------------------

def test_health_updates_map_to_the_worst_component_of_each_host():
    from balancer.sources.vcenter.health import host_health

    updates = [("host-1", "p/fan", "green", "fan: Fan 3"), ("host-1", "p/psu", "yellow", "power: PSU 1 redundancy lost"),
               ("host-2", "p/fan", "red", "fan: Fan 1 failed"), ("host-2", "p/mem", "yellow", "memory: ECC errors"),
               ("host-3", "p/fan", "green", "fan: Fan 2"),
               ("host-4", "p/fan", "gray", "fan: Fan 1"),  # unknown: says nothing
               ("host-5", "p/fan", "red", "fan: Fan 4 failed"), ("host-5", "p/fan", "green", "fan: Fan 4"),  # mended
               ("host-6", "p/psu", "red", "power: PSU 1 failed"), ("host-6", "q/psu", "red", "power: PSU 2 failed")]
    assert host_health(updates) == {
        "host-1": ("moderate", "power: PSU 1 redundancy lost"),
        "host-2": ("severe", "fan: Fan 1 failed"),
        "host-3": ("healthy", ""),
        "host-5": ("healthy", ""),
        "host-6": ("severe", "power: PSU 1 failed; power: PSU 2 failed"),
    }
    assert host_health([]) == {}
    assert host_health([("h", "c", "RED", "a\nmulti-line\tdescription")]) == {"h": ("severe", "a multi-line description")}


class _Ref:
    def __init__(self, moid):
        self.moid = moid

    def _GetMoId(self):
        return self.moid


class _Manager:
    """A HealthUpdateManager as pyVmomi shows it, with two providers."""

    def __init__(self, fail=None, broken=()):
        from types import SimpleNamespace as O

        self.fail, self.broken = fail, broken
        self.infos = {"p1": [O(id="fan1", componentType="fan", description="Fan 1")],
                      "p2": [O(id="psu", componentType="power", description="PSU 2")]}
        self.updates = {"p1": [O(entity=_Ref("host-1"), healthUpdateInfoId="fan1", status="yellow", remediation="")],
                        "p2": [O(entity=_Ref("host-2"), healthUpdateInfoId="psu", status="red",
                                 remediation="replace the PSU"),
                               O(entity=_Ref("host-9"), healthUpdateInfoId="psu", status="red", remediation="")]}
        self.calls = 0

    def QueryProviderList(self):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return ["p1", "p2"]

    def QueryHealthUpdateInfos(self, providerId):
        return self.infos[providerId]

    def QueryHealthUpdates(self, providerId):
        if providerId in self.broken:
            raise RuntimeError("provider p1 is broken")
        return self.updates[providerId]


def _reader(manager):
    from types import SimpleNamespace as O

    from balancer.sources.vcenter.health import HealthReader

    return HealthReader(O(content=O(healthUpdateManager=manager)))


def test_the_health_reader_reads_every_provider_or_the_clusters_own_and_is_guarded():
    from types import SimpleNamespace as O

    from pyVmomi import vmodl

    hosts = {"host-1", "host-2", "host-3"}  # host-9 is another cluster's
    assert _reader(_Manager()).read(None, hosts) == {
        "host-1": ("moderate", "fan: Fan 1"), "host-2": ("severe", "power: PSU 2 (replace the PSU)")}
    # the cluster's Proactive HA names its providers: only theirs count
    only_p1 = O(infraUpdateHaConfig=O(providers=["p1"]))
    assert _reader(_Manager()).read(only_p1, hosts) == {"host-1": ("moderate", "fan: Fan 1")}
    # a broken provider is left out, the others read
    assert _reader(_Manager(broken=("p1",))).read(None, hosts) == {"host-2": ("severe", "power: PSU 2 (replace the PSU)")}
    # no manager at all, or one vCenter does not implement (vcsim 0.24): no health, asked once
    assert _reader(None).read(None, hosts) == {}
    missing = _Manager(fail=vmodl.fault.MethodNotFound())
    reader = _reader(missing)
    assert reader.read(None, hosts) == {} and reader.read(None, hosts) == {} and missing.calls == 1
    # any other failure: no health this time, asked again next time
    flaky = _Manager(fail=RuntimeError("timeout"))
    reader = _reader(flaky)
    assert reader.read(None, hosts) == {} and reader.read(None, hosts) == {} and flaky.calls == 2


def test_provider_health_reaches_the_plan_and_the_config_wins_over_it():
    s = skewed(health="severe", health_reason="power: PSU 2 (replace the PSU)")  # as the collector writes it
    plan = make_plan(s, PlanOptions(time_limit_s=1))
    assert [(p.host, p.action) for p in plan.power] == [("c", "enter-maintenance")]
    assert "health provider: power: PSU 2 (replace the PSU)" in plan.power[0].detail
    cfg = on_vcenter({"host_health": {"c": {"state": "healthy", "reason": "provider wrong"}}})
    assert any(m.target == "c" for m in make_plan(s, plan_options(cfg)).moves)
