"""Initial placement of a VM's disks (#33; engine/storage/placement.py): a datastore per disk that every host
listed mounts, each datastore cluster's space threshold, latency, storage rules, disks kept together, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from balancer.engine import PlanOptions
from balancer.engine.compute.placement import place_vm, spec_problem
from balancer.engine.options import StorageOptions
from balancer.snapshot import parse_snapshot
from balancer.snapshot.vmspec import VmSpec
from test_engine_properties import SETTINGS


def host(name):
    return {"name": name, "cpu_capacity_mhz": 10000, "mem_capacity_mb": 10000}


def ds(name, free, hosts, pod=None, cap=1000, **kw):
    out = {"name": name, "capacity_gb": cap, "free_gb": free, "hosts": hosts, **kw}
    if pod:
        out["datastore_cluster"] = pod
    return out


def snap(hosts, stores, vms=(), pods=(), rules=()):
    return parse_snapshot({"version": 6, "cluster": "t", "hosts": [host(h) for h in hosts], "datastores": stores,
                           "vms": list(vms), "datastore_clusters": list(pods), "rules": list(rules)})


def vm(name, h, disks=(), cpu=1000, **kw):
    return {"name": name, "host": h, "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": cpu, "mem_demand_mb": 1000,
            "disks": [{"name": n, "datastore": d, "size_gb": gb} for n, d, gb in disks], **kw}


def spec(disks, **kw):
    return VmSpec.model_validate({"name": "new", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 1000,
                                  "mem_demand_mb": 1000, "disks": disks, **kw})


def test_disks_go_together_to_a_datastore_every_listed_host_mounts_and_the_others_say_why():
    s = snap(["a", "b", "c"], [ds("ds1", 500, ["a", "b", "c"], "pod"), ds("ds2", 700, ["a"], "pod"),
                               ds("ds3", 100, ["a", "b", "c"])],
             vms=[vm("x", "a", [("Hard disk 1", "ds1", 100)], cpu=3000)], pods=[{"name": "pod", "space_threshold": 0.7}])
    p = place_vm(s, spec([{"size_gb": 100}, {"size_gb": 50, "thin": True, "used_gb": 10}]))
    assert p.status == "ok" and p.hosts[0].host == "b"
    assert [(d.disk, d.datastore) for d in p.disks] == [("Hard disk 1", "ds1"), ("Hard disk 2", "ds1")]
    assert {c.host for c in p.hosts} == {"a", "b", "c"}  # all mount ds1
    (store,) = p.datastores
    assert store.space_before == pytest.approx(0.5) and store.space_after == pytest.approx(0.61)
    assert store.space_threshold == pytest.approx(0.7) and not store.over_threshold
    why = {r.datastore: r.why for r in p.rejected_datastores}
    assert "not mounted by b" in why["ds2"] and "no room" in why["ds3"]


def test_a_datastore_within_its_own_threshold_is_chosen_over_a_less_used_one_it_would_push_above():
    s = snap(["a"], [ds("ds1", 400, ["a"], "tight"), ds("ds2", 350, ["a"], "loose")],
             pods=[{"name": "tight", "space_threshold": 0.7}, {"name": "loose", "space_threshold": 0.9}])
    p = place_vm(s, spec([{"size_gb": 150}]))
    assert p.disks[0].datastore == "ds2" and not p.datastores[0].over_threshold
    assert "above its 70 % space threshold" in p.rejected_datastores[0].why
    # when no datastore has room within its threshold, the disk still goes where it fits, marked
    p = place_vm(s, spec([{"size_gb": 300}]))
    assert p.status == "ok" and p.datastores[0].over_threshold and "above its space threshold" in p.datastores[0].reason


def test_the_host_that_mounts_a_datastore_with_room_wins_over_a_better_balanced_one():
    # b is idle (better balance) but mounts only a datastore the disk would push above its threshold
    s = snap(["a", "b"], [ds("roomy", 800, ["a"]), ds("full", 250, ["a", "b"])],
             vms=[vm("x", "a", [("Hard disk 1", "roomy", 10)], cpu=4000)])
    p = place_vm(s, spec([{"size_gb": 100}]))
    assert [c.host for c in p.hosts] == ["a"] and p.disks[0].datastore == "roomy"
    assert {r.host: r.why for r in p.rejected}["b"].startswith("does not mount datastore roomy")


def test_latency_above_its_threshold_is_avoided_and_the_physical_capacity_is_hard():
    s = snap(["a"], [ds("slow", 900, ["a"], latency_ms=40), ds("fast", 500, ["a"], latency_ms=3),
                     ds("tiny", 50, ["a"], cap=60)])
    p = place_vm(s, spec([{"size_gb": 100}]))
    assert p.disks[0].datastore == "fast"
    why = {r.datastore: r.why for r in p.rejected_datastores}
    assert "latency 40 ms, above its 15 ms threshold" in why["slow"] and "no room" in why["tiny"]
    p = place_vm(s, spec([{"size_gb": 950}]))
    assert p.status == "impossible" and "no datastore it mounts has room" in p.why_not


def test_disks_not_kept_together_spread_and_a_datastore_cluster_confines_them():
    s = snap(["a"], [ds("p1", 600, ["a"], "pod"), ds("p2", 600, ["a"], "pod"), ds("solo", 990, ["a"])],
             pods=[{"name": "pod", "keep_disks_together": False}])
    p = place_vm(s, spec([{"size_gb": 100, "datastore_cluster": "pod"}, {"size_gb": 100, "datastore_cluster": "pod"}]))
    assert sorted(d.datastore for d in p.disks) == ["p1", "p2"]
    assert "the disks ask for pod" in {r.datastore: r.why for r in p.rejected_datastores}["solo"]
    p = place_vm(s, spec([{"size_gb": 100, "datastore_cluster": "pod"}, {"size_gb": 100, "datastore_cluster": "pod"}],
                         keep_disks_together=True))
    assert len({d.datastore for d in p.disks}) == 1


def test_a_vm_datastore_anti_affinity_rule_keeps_the_disks_off_the_other_vms_datastores():
    s = snap(["a"], [ds("ds1", 900, ["a"]), ds("ds2", 500, ["a"]), ds("ds3", 200, ["a"])],
             vms=[vm("db1", "a", [("Hard disk 1", "ds1", 10)]), vm("db2", "a", [("Hard disk 1", "ds3", 10)])],
             rules=[{"name": "dbs-apart", "type": "vm-datastore-anti-affinity", "vms": ["db1", "db2"]}])
    sp = spec([{"size_gb": 10}], rules=["dbs-apart"])
    assert spec_problem(s, sp) is None
    p = place_vm(s, sp)
    assert p.disks[0].datastore == "ds2"
    assert "rule dbs-apart" in p.rejected_datastores[0].why
    assert place_vm(s, spec([{"size_gb": 10}])).disks[0].datastore == "ds1"  # not in the rule: the least used


def test_a_registered_vms_disk_moves_only_when_it_must_and_hosts_must_reach_the_disks_it_keeps():
    stores = [ds("hot", 150, ["a", "b"]), ds("cool", 800, ["a", "b"]), ds("side", 20, ["a"])]
    off = vm("old", "a", [("Hard disk 1", "hot", 100), ("Hard disk 2", "side", 10)], powered_on=False)
    s = snap(["a", "b"], stores, vms=[off])
    p = place_vm(s, VmSpec.model_validate({"name": "old", "cpu_demand_mhz": 100, "disks": [{"name": "Hard disk 1", "size_gb": 100}]}))
    assert p.disks[0].datastore == "cool" and p.disks[0].moved_from == "hot"  # hot is at 85 %, above 80 %
    # Hard disk 2 stays on side, which only a mounts
    assert [c.host for c in p.hosts] == ["a"] and "side" in {r.host: r.why for r in p.rejected}["b"]
    # without disks in the spec the disks stay where they are: the host must mount them all
    p = place_vm(s, VmSpec.model_validate({"name": "old", "cpu_demand_mhz": 100}))
    assert [c.host for c in p.hosts] == ["a"] and p.disks == []
    cool = snap(["a", "b"], [ds("hot", 500, ["a", "b"]), *stores[1:]], vms=[off])
    p = place_vm(cool, VmSpec.model_validate({"name": "old", "cpu_demand_mhz": 100, "disks": [{"name": "Hard disk 1", "size_gb": 100}]}))
    assert p.disks[0].datastore == "hot" and p.disks[0].moved_from is None  # within its threshold: no move


def test_thin_growth_within_the_horizon_counts():
    s = snap(["a"], [ds("ds1", 300, ["a"]), ds("ds2", 260, ["a"])])
    disk = {"size_gb": 500, "thin": True, "used_gb": 10, "growth_gb_per_day": 2}
    assert place_vm(s, spec([disk])).disks[0].datastore == "ds1"
    p = place_vm(s, spec([disk]), PlanOptions(storage=StorageOptions(growth_days=30)))
    assert p.disks[0].space_gb == pytest.approx(70) and p.disks[0].datastore == "ds1"


def test_bad_disk_specs_are_one_line():
    s = snap(["a"], [ds("ds1", 300, ["a"])], vms=[vm("old", "a", [("Hard disk 1", "ds1", 10)], powered_on=False)])
    assert "unknown datastore cluster 'nope'" in spec_problem(s, spec([{"size_gb": 1, "datastore_cluster": "nope"}]))
    assert "has no disk 'Hard disk 9'" in spec_problem(
        s, VmSpec.model_validate({"name": "old", "cpu_demand_mhz": 1, "disks": [{"name": "Hard disk 9", "size_gb": 1}]}))
    for bad, words in [({"version": 1, "disks": [{"size_gb": 1}]}, "a version 2 field in a version 1 VM spec"),
                       ({"disks": [{"size_gb": 1, "used_gb": 1}]}, "for a thin disk"),
                       ({"disks": [{"size_gb": 1, "thin": True, "used_gb": 2}]}, "more than its size_gb"),
                       ({"disks": [{"name": "d", "size_gb": 1}, {"name": "d", "size_gb": 1}]}, "'d' listed twice")]:
        with pytest.raises(ValidationError, match=words):
            VmSpec.model_validate({"name": "n", "vcpus": 1, "mem_mb": 10, "cpu_demand_mhz": 1, **bad})


@st.composite
def storage_cases(draw):
    hosts = ["h0", "h1", "h2"][:draw(st.integers(1, 3))]
    pods = [{"name": "p0", "space_threshold": draw(st.sampled_from([0.6, 0.8, 0.9]))},
            {"name": "p1", "space_threshold": draw(st.sampled_from([0.7, 0.85]))}]
    stores = []
    for i in range(draw(st.integers(1, 5))):
        cap = draw(st.integers(100, 2000))
        mounted = draw(st.lists(st.sampled_from(hosts), min_size=1, unique=True))
        stores.append(ds(f"ds{i}", draw(st.integers(0, cap)), mounted, draw(st.sampled_from([None, "p0", "p1"])), cap=cap))
    used_pods = {d.get("datastore_cluster") for d in stores} - {None}
    disks = [{"size_gb": draw(st.integers(1, 600)), "datastore_cluster": draw(st.sampled_from([None, *sorted(used_pods)]))}
             for _ in range(draw(st.integers(1, 3)))]
    together = draw(st.sampled_from([None, True, False]))
    extra = {} if together is None else {"keep_disks_together": together}
    return snap(hosts, stores, pods=[p for p in pods if p["name"] in used_pods]), spec(disks, **extra)


@SETTINGS
@given(storage_cases())
def test_property_disks_on_mounted_datastores_and_none_above_its_threshold_while_another_has_room(case):
    s, sp = case
    p = place_vm(s, sp)
    if p.status != "ok":
        return
    stores = {d.name: d for d in s.datastores}
    thr = {c.name: c.space_threshold for c in s.datastore_clusters}
    chosen = {d.datastore for d in p.disks}
    for c in p.hosts:  # hard: every host listed mounts every datastore chosen
        assert all(c.host in stores[d].hosts for d in chosen)
    used = {name: d.capacity_gb - d.free_gb for name, d in stores.items()}
    for d in p.disks:
        used[d.datastore] += d.space_gb
    for name in chosen:
        assert used[name] <= stores[name].capacity_gb + 1e-6  # physical capacity
    best = p.hosts[0].host
    for store in p.datastores:
        if not store.over_threshold:
            assert store.space_after <= store.space_threshold + 1e-9
            continue
        # above its threshold: no other datastore the best host mounts, in the disks' datastore cluster, had room
        # for the unit (the disks asking for one datastore cluster, when kept together: VMDK affinity is a rule)
        asked_of = {x.name: x.datastore_cluster for x in sp.disks}
        for name in store.disks:
            asked = asked_of[name]
            unit = [d for d in p.disks if d.datastore == store.datastore and asked_of[d.disk] == asked] \
                if sp.keep_disks_together is not False else [d for d in p.disks if d.disk == name]
            gb = sum(d.space_gb for d in unit)
            for other, o in stores.items():
                if other == store.datastore or best not in o.hosts or (asked and o.datastore_cluster != asked):
                    continue
                limit = thr.get(o.datastore_cluster or "", 0.8) * o.capacity_gb
                assert used[other] + gb > limit - 1e-6


def test_execute_moves_the_disks_the_placement_puts_elsewhere_then_powers_on():
    from balancer.app.place import execute_placement
    from balancer.sources.abilities import CanPowerOnVM

    class Fake:
        abilities = frozenset({CanPowerOnVM})

        def __init__(self):
            self.calls = []

        def power_on_vm(self, vm_name, host_name, disks=None):
            self.calls.append((vm_name, host_name, disks))
            return "done"

    off = vm("old", "a", [("Hard disk 1", "hot", 100)], powered_on=False)
    s = snap(["a"], [ds("hot", 150, ["a"]), ds("cool", 800, ["a"])], vms=[off])
    p = place_vm(s, VmSpec.model_validate({"name": "old", "cpu_demand_mhz": 100,
                                            "disks": [{"name": "Hard disk 1", "size_gb": 100}]}))
    fake = Fake()
    assert execute_placement(fake, p, s) == "done"
    assert fake.calls == [("old", "a", {"Hard disk 1": "cool"})]


def test_the_growth_horizon_is_set_through_the_config(tmp_path):
    """sdrs.growth_horizon (config/clusters.yaml's lab cluster: 168h) reaches the planner as days, and a
    thin disk's growth then counts in its placement."""
    from balancer.app.oneoff import cluster_of
    from balancer.config.plan_options import plan_options
    from helpers import ROOT

    _, cfg = cluster_of(str(ROOT / "config" / "clusters.yaml"), "lab")
    options = plan_options(cfg)
    assert options.storage is not None and options.storage.growth_days == pytest.approx(7.0)
    _, cfg = cluster_of(str(ROOT / "config" / "vcenter.yaml"), None)
    assert plan_options(cfg).storage.growth_days == 0.0
    s = snap(["a"], [ds("ds1", 300, ["a"])])
    p = place_vm(s, spec([{"size_gb": 500, "thin": True, "used_gb": 10, "growth_gb_per_day": 2}]), options)
    assert p.disks[0].space_gb == pytest.approx(24)


def test_post_place_with_disks_names_a_datastore_per_disk_and_a_disk_that_fits_nowhere_is_a_4xx_naming_it(tmp_path):
    """POST /place on the service's endpoint (balancer/web) with a VM spec listing disks: the answer names a
    datastore per disk (every host listed mounts it); a disk no datastore has room for is a 409 whose
    one-line reason names it; a disk spec that cannot be is a 400 with one line naming the item."""
    import json

    from test_placement import _post
    from service_helpers import Running, config_of, sim_config

    svc = Running(config_of(sim_config(tmp_path, drs={"interval": "0.3s"})))
    disks = [{"name": "os", "size_gb": 40}, {"name": "data", "size_gb": 200, "thin": True, "used_gb": 20}]
    try:
        svc.wait_cycles("sim-cluster", 1)
        snap, _ = svc.service.runners[0].last_seen
        mounts = {d.name: set(d.hosts) for d in snap.datastores}
        base = {"name": "new-01", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 500}
        for together in (True, False):
            code, answer = _post(svc.url, json.dumps({**base, "disks": disks, "keep_disks_together": together}).encode())
            assert code == 200 and answer["status"] == "ok", answer
            assert [d["disk"] for d in answer["disks"]] == ["os", "data"]
            chosen = {d["disk"]: d["datastore"] for d in answer["disks"]}
            assert set(chosen.values()) <= set(mounts)
            if together:
                assert len(set(chosen.values())) == 1
            for c in answer["hosts"]:
                assert all(c["host"] in mounts[ds] for ds in chosen.values())
            assert {s["datastore"] for s in answer["datastores"]} == set(chosen.values())

        huge = [disks[0], {"name": "archive", "size_gb": 90000}]
        code, answer = _post(svc.url, json.dumps({**base, "disks": huge, "keep_disks_together": False}).encode())
        assert code == 409 and answer["status"] == "impossible", answer
        why = answer["why_not"]
        assert "\n" not in why and len(why) <= 300 and "disk archive (90000 GB)" in why and "disk os" not in why

        bad = [{"name": "os", "size_gb": 40, "datastore_cluster": "nope"}]
        code, answer = _post(svc.url, json.dumps({**base, "disks": bad}).encode())
        assert code == 400 and list(answer) == ["error"], answer
        assert "\n" not in answer["error"] and len(answer["error"]) <= 300 and "'nope'" in answer["error"]
        code, answer = _post(svc.url, json.dumps({**base, "disks": [{"name": "os", "size_gb": -1}]}).encode())
        assert code == 400 and "disks[0] (os).size_gb" in answer["error"] and "\n" not in answer["error"], answer
    finally:
        assert svc.stop() == 0
