"""VM scores (#34): our formula (engine/compute/vmscore.py, docs/vsphere7.md), checked against scores
computed by hand, the buckets and the cluster score."""

from __future__ import annotations

import math

import pytest

from balancer.engine.compute.vmscore import bucket_counts, cluster_score, snapshot_scores
from balancer.snapshot import parse_snapshot


def host(name, cpu=10000.0, mem=65536.0, **kw):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, **kw}


def vm(name, h, cpu=1000.0, mem=2000.0, **kw):
    return {"name": name, "host": h, "vcpus": 4, "mem_mb": 4096.0, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def snap(hosts, vms):
    return parse_snapshot({"version": 6, "cluster": "c", "hosts": hosts, "vms": vms})


def test_a_busy_host_costs_its_vms_modelled_ready_time():
    # host a at 90 % CPU: ready = 25 x (0.90 - 0.75) = 3.75 %; cpu part 1 - 3.75/20 = 0.8125; memory idle
    s = snapshot_scores(snap([host("a"), host("b")], [vm("v1", "a", cpu=4500.0), vm("v2", "a", cpu=4500.0)]))
    assert s["v1"] == pytest.approx(81.25) and s["v2"] == pytest.approx(81.25)


def test_measured_ready_beyond_the_model_follows_the_vm():
    # measured 8 % on a host the model gives 3.75 %: score 100 x (1 - 8/20) = 60; the 4.25 % the host does
    # not explain stays with the VM: on b (45 %, model 0) 100 x (1 - 4.25/20) = 78.75
    s = snap([host("a"), host("b")], [vm("v1", "a", cpu=4500.0, cpu_ready_pct=8.0), vm("v2", "a", cpu=4500.0)])
    assert snapshot_scores(s)["v1"] == pytest.approx(60.0)
    after = snapshot_scores(s, {"v1": "b"})
    assert after["v1"] == pytest.approx(78.75)
    assert after["v2"] == pytest.approx(100.0)  # a at 45 %: no ready time left


def test_ballooned_and_swapped_memory():
    # (512 + 3 x 128) / 4096 = 0.21875 reclaimed; memory part 1 - 0.21875 / 0.5 = 0.5625
    s = snapshot_scores(snap([host("a")], [vm("v", "a", mem_ballooned_mb=512.0, mem_swapped_mb=128.0)]))
    assert s["v"] == pytest.approx(56.25)


def test_compressed_memory_counts_as_ballooned_and_unknown_inputs_are_not_zero():
    # (512 + 256 + 3 x 128) / 4096 = 0.28125 reclaimed; memory part 1 - 0.28125 / 0.5 = 0.4375
    s = snapshot_scores(snap([host("a")], [vm("v", "a", mem_ballooned_mb=512.0, mem_swapped_mb=128.0,
                                              mem_compressed_mb=256.0)]))
    assert s["v"] == pytest.approx(43.75)
    # one of the three known: the others count as 0 (1024 / 4096 = 0.25: memory part 0.5)
    assert snapshot_scores(snap([host("a")], [vm("v", "a", mem_compressed_mb=1024.0)]))["v"] == pytest.approx(50.0)
    # none known, nor CPU ready, on a host at 90 % CPU and 97 % memory: the model's figures stand (a measured 0
    # would have lowered the reclaim and the ready time to 0 and scored 100)
    busy = [host("a", mem=4000.0)]
    one = [vm("v", "a", cpu=9000.0, mem=3880.0)]
    modelled = snapshot_scores(snap(busy, one))["v"]
    # ready 3.75 % -> 0.8125; reclaim 2 x (0.97 - 0.95) = 0.04 -> 1 - 0.04 / 0.5 = 0.92
    assert modelled == pytest.approx(100 * 0.8125 * 0.92)
    zeros = [dict(one[0], cpu_ready_pct=0.0, mem_ballooned_mb=0.0, mem_swapped_mb=0.0, mem_compressed_mb=0.0)]
    assert snapshot_scores(snap(busy, zeros))["v"] == pytest.approx(100.0)


def test_vcenter_counters_convert_to_the_score_inputs():
    from balancer.sources.vcenter.collector import ready_pct, served

    # cpu.ready.summation: ms per 20 s sample, summed over the vCPUs. 4 vCPUs, 800 and 1200 ms: mean 1000 ms
    # of 4 x 20,000 ms = 1.25 %
    assert ready_pct([800.0, 1200.0], 4) == pytest.approx(1.25)
    assert ready_pct([4000.0], 1) == pytest.approx(20.0)  # 4 s of 20 s on one vCPU
    assert ready_pct([90_000.0], 2) == 100.0  # never above 100
    assert ready_pct([], 2) is None and ready_pct(None, 2) is None  # no sample: not known
    out = served({"cpu.ready.summation": [800.0, 1200.0], "mem.vmmemctl.average": [262_144.0, 524_288.0],
                  "mem.swapped.average": [0.0], "cpu.usagemhz.average": [500.0]}, vcpus=4, mem_mb=4096.0)
    # ballooned (256 + 512) / 2 = 384 MB; swapped measured 0; compressed not returned: left out (unknown)
    assert out == {"cpu_ready_pct": 1.25, "mem_ballooned_mb": 384.0, "mem_swapped_mb": 0.0}
    assert served({"mem.compressed.average": [8_388_608.0]}, 1, 4096.0) == {"mem_compressed_mb": 4096.0}  # <= its memory
    assert served(None, 2, 1024.0) == {} and served({}, 2, 1024.0) == {}


def test_a_host_above_its_capacity_serves_a_share_of_the_demand():
    # two 6250 MHz VMs on a 10000 MHz host (the cluster has room: entitled to their demand): u = 1.25,
    # served 1/1.25 = 0.8, ready 25 x 0.5 = 12.5 %: 0.8 x (1 - 12.5/20) = 0.3
    s = snapshot_scores(snap([host("a"), host("b")], [vm("v1", "a", cpu=6250.0), vm("v2", "a", cpu=6250.0)]))
    assert s["v1"] == pytest.approx(30.0)


def test_entitlement_below_demand_under_contention():
    # one 10000 MHz host, two 8000 MHz VMs with equal shares: each entitled to 5000 (0.625 of its demand);
    # u = 1.0, ready 6.25 %: 0.625 x (1 - 6.25/20) = 0.4296875
    s = snapshot_scores(snap([host("a")], [vm("v1", "a", cpu=8000.0), vm("v2", "a", cpu=8000.0)]))
    assert s["v1"] == pytest.approx(42.96875)


def test_powered_off_vms_have_no_score():
    s = snapshot_scores(snap([host("a")], [vm("v1", "a"), vm("v2", "a", powered_on=False)]))
    assert set(s) == {"v1"} and s["v1"] == pytest.approx(100.0)


def test_buckets_and_cluster_score():
    scores = [10.0, 20.0, 59.9, 100.0, math.nan]
    assert bucket_counts(scores) == {"0-20": 1, "20-40": 1, "40-60": 1, "60-80": 0, "80-100": 1}
    assert cluster_score(scores) == pytest.approx((10 + 20 + 59.9 + 100) / 4)
    assert cluster_score([]) is None
