"""Entitlement (engine/compute/entitlement.py): hand-computed divisions of a contended cluster by shares,
reservations, limits, expandable reservations and scalable shares; and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.cluster import build_cluster
from balancer.engine.compute.entitlement import entitle, water_fill
from balancer.snapshot import parse_snapshot


def snap(vms, pools=(), cpu=30000.0, hosts=1, scalable=False, **kw):
    hs = [{"name": f"h{i}", "cpu_capacity_mhz": cpu / hosts, "mem_capacity_mb": 1_000_000.0} for i in range(hosts)]
    doc = {"version": 5, "cluster": "c", "hosts": hs, "resource_pools": list(pools), "scalable_shares": scalable,
           "vms": [{"host": "h0", "vcpus": 4, "mem_mb": 4096, "mem_demand_mb": 1024.0, **v} for v in vms], **kw}
    return parse_snapshot(doc)


def cpu_entitlement(s) -> dict[str, float]:
    load = np.array([[v.cpu_load_mhz, v.mem_load_mb] for v in s.vms])
    return {v.name: round(float(e), 3) for v, e in zip(s.vms, entitle(s, load)[:, 0])}


def pool(name, parent=None, shares="normal", **kw):
    return {"name": name, "parent": parent, "cpu_shares": {"level": shares}, **kw}


def test_sibling_pools_divide_by_shares():
    # 40 GHz of demand on 30 GHz: prod (high, 8000) gets up to 2/3, test (normal, 4000) the rest
    s = snap([{"name": "p1", "cpu_demand_mhz": 20000.0, "resource_pool": "prod"},
              {"name": "t1", "cpu_demand_mhz": 20000.0, "resource_pool": "test"}],
             [pool("prod", shares="high"), pool("test")])
    assert cpu_entitlement(s) == {"p1": 20000.0, "t1": 10000.0}


def test_a_reservation_comes_before_shares():
    # t1 reserves 15 GHz: test gets it first; the 15 GHz left go 8:4, prod's 10 GHz, test's 5 GHz (its demand)
    s = snap([{"name": "p1", "cpu_demand_mhz": 20000.0, "resource_pool": "prod"},
              {"name": "t1", "cpu_demand_mhz": 20000.0, "cpu_reservation_mhz": 15000.0, "resource_pool": "test"}],
             [pool("prod", shares="high"), pool("test")])
    assert cpu_entitlement(s) == {"p1": 10000.0, "t1": 20000.0}


def test_a_limit_caps_without_contention():
    s = snap([{"name": "capped", "cpu_demand_mhz": 8000.0, "cpu_limit_mhz": 3000.0},
              {"name": "free", "cpu_demand_mhz": 8000.0}])
    assert cpu_entitlement(s) == {"capped": 3000.0, "free": 8000.0}
    c = build_cluster(s, PlanOptions())
    assert c.load[c.vm_index("capped"), 0] == 3000.0


def test_a_pool_limit_caps_its_vms_without_contention():
    s = snap([{"name": "t1", "cpu_demand_mhz": 6000.0, "resource_pool": "test"},
              {"name": "t2", "cpu_demand_mhz": 2000.0, "resource_pool": "test"},
              {"name": "p1", "cpu_demand_mhz": 6000.0}], [pool("test", cpu_limit_mhz=4000.0)])
    # 4 GHz for the pool, shared 1:1 between its equal VMs, t2 capped at its 2 GHz demand
    assert cpu_entitlement(s) == {"t1": 2000.0, "t2": 2000.0, "p1": 6000.0}


@pytest.mark.parametrize("expandable, expected", [(True, {"c1": 18000.0, "o1": 12000.0}),
                                                  (False, {"c1": 10000.0, "o1": 20000.0})])
def test_an_expandable_reservation_borrows_from_its_parent(expandable, expected):
    # c1 reserves 12 GHz inside crit (no reservation of its own): expandable, crit takes the 12 GHz from the
    # root first, then 4:8 of the 18 GHz left (6 GHz more); not expandable, crit has only its 4:8 share (10 GHz)
    s = snap([{"name": "c1", "cpu_demand_mhz": 20000.0, "cpu_reservation_mhz": 12000.0, "resource_pool": "crit"},
              {"name": "o1", "cpu_demand_mhz": 30000.0, "vcpus": 8, "resource_pool": "other"}],
             [pool("crit", cpu_expandable=expandable), pool("other", shares="high")])
    assert cpu_entitlement(s) == expected


@pytest.mark.parametrize("scalable, each_test_vm, prod", [(False, 2500.0, 20000.0), (True, 5000.0, 10000.0)])
def test_scalable_shares_count_what_a_pool_holds(scalable, each_test_vm, prod):
    # prod (high) holds one 4-vCPU VM, test (normal) four: fixed shares 8000:4000 favour prod; scalable
    # shares 2 x 4000 : 1 x 16000 favour test, which holds four times the vCPUs
    vms = [{"name": "p1", "cpu_demand_mhz": 20000.0, "resource_pool": "prod"}]
    vms += [{"name": f"t{i}", "cpu_demand_mhz": 10000.0, "resource_pool": "test"} for i in range(4)]
    s = snap(vms, [pool("prod", shares="high"), pool("test")], scalable=scalable)
    got = cpu_entitlement(s)
    assert got["p1"] == prod and all(got[f"t{i}"] == each_test_vm for i in range(4))


def test_water_fill_gives_what_a_capped_sibling_leaves_to_the_others():
    got = water_fill(100.0, np.array([10.0, 80.0, 80.0]), np.zeros(3), np.array([1.0, 1.0, 2.0]))
    assert np.allclose(got, [10.0, 30.0, 60.0])


def test_balancing_uses_entitlement_under_contention():
    # two hosts, 20 GHz each, 48 GHz of demand: the low-share pool is squeezed, and the plan balances entitlement
    vms = [{"name": f"p{i}", "cpu_demand_mhz": 6000.0, "resource_pool": "prod", "host": "h0"} for i in range(4)]
    vms += [{"name": f"t{i}", "cpu_demand_mhz": 6000.0, "resource_pool": "test", "host": "h0"} for i in range(4)]
    s = snap(vms, [pool("prod", shares="high"), pool("test", shares="low")], cpu=40000.0, hosts=2)
    c = build_cluster(s, PlanOptions())
    assert c.load[:, 0].sum() == pytest.approx(40000.0)
    assert c.load[c.vm_index("p0"), 0] == 6000.0 and c.load[c.vm_index("t0"), 0] == pytest.approx(4000.0)
    plan = make_plan(s, PlanOptions(threshold=3))
    assert plan.moves and all(m.target == "h1" for m in plan.moves)


@st.composite
def pooled_clusters(draw):
    n_pools = draw(st.integers(0, 5))
    pools = []
    for i in range(n_pools):
        parent = draw(st.sampled_from([None] + [p["name"] for p in pools]))
        lim = draw(st.sampled_from([None, 5000.0, 20000.0]))
        pools.append(pool(f"rp{i}", parent, shares=draw(st.sampled_from(["low", "normal", "high"])), cpu_limit_mhz=lim))
    vms = []
    for j in range(draw(st.integers(1, 12))):
        demand = draw(st.floats(0, 16000))
        res = draw(st.sampled_from([0.0, 0.0, 500.0, 2000.0]))
        lim = draw(st.sampled_from([None, None, 3000.0, 12000.0]))
        vms.append({"name": f"v{j}", "cpu_demand_mhz": demand, "cpu_reservation_mhz": res, "cpu_limit_mhz": lim,
                    "resource_pool": draw(st.sampled_from([None] + [p["name"] for p in pools])),
                    "cpu_shares": {"level": draw(st.sampled_from(["low", "normal", "high"]))}})
    return snap(vms, pools, cpu=draw(st.sampled_from([8000.0, 30000.0, 200000.0])),
                scalable=draw(st.booleans()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pooled_clusters())
def test_entitlements_keep_reservations_limits_and_capacity(s):
    load = np.array([[v.cpu_load_mhz, v.mem_load_mb] for v in s.vms])
    got = entitle(s, load)[:, 0]
    capacity = sum(h.cpu_capacity_mhz for h in s.hosts)
    assert got.sum() <= capacity + 1e-3
    for v, e in zip(s.vms, got):
        assert e <= v.cpu_load_mhz + 1e-6  # at most min(demand, limit) (raised to the reservation)
        if sum(x.cpu_reservation_mhz for x in s.vms) <= capacity and v.cpu_reservation_mhz <= v.cpu_load_mhz:
            # reservations that fit are kept whenever no pool limit stands above them
            chain, p = [], v.resource_pool
            pools = {q.name: q for q in s.resource_pools}
            while p is not None:
                chain.append(pools[p])
                p = pools[p].parent
            if all(q.cpu_limit_mhz is None for q in chain):
                assert e >= v.cpu_reservation_mhz - 1e-6
    if load[:, 0].sum() <= capacity and not any(p.cpu_limit_mhz is not None for p in s.resource_pools):
        assert np.array_equal(got, load[:, 0])  # no contention, no pool limit: entitlement is the load


def test_place_refuses_a_vm_whose_reservation_its_pool_cannot_admit():
    from balancer.engine.compute.placement import place_vm, spec_problem
    from balancer.snapshot.vmspec import VmSpec

    s = snap([{"name": "p1", "cpu_demand_mhz": 2000.0, "cpu_reservation_mhz": 6000.0, "resource_pool": "fixed"}],
             [pool("fixed", cpu_reservation_mhz=8000.0, cpu_expandable=False), pool("grow", cpu_reservation_mhz=1000.0)])
    small = VmSpec(name="n1", vcpus=2, mem_mb=4096, cpu_demand_mhz=500.0, cpu_reservation_mhz=1500.0, resource_pool="fixed")
    big = small.model_copy(update={"cpu_reservation_mhz": 2500.0})
    assert place_vm(s, small).status == "ok"
    out = place_vm(s, big)
    assert out.status == "impossible" and out.hosts == []
    assert out.why_not == ("resource pool fixed: its reservation is not expandable and has "
                           "2,000 MHz CPU unreserved, less than the VM's 2,500 MHz")
    # an expandable pool borrows from the root: 30,000 - 8,000 (fixed) - 1,000 (grow) = 21,000 left there
    assert place_vm(s, big.model_copy(update={"resource_pool": "grow", "cpu_reservation_mhz": 15000.0})).status == "ok"
    out = place_vm(s, big.model_copy(update={"resource_pool": "grow", "cpu_reservation_mhz": 23000.0, "vcpus": 4}))
    assert out.status == "impossible" and "which has 21,000 MHz unreserved of 30,000 MHz" in out.why_not
    assert spec_problem(s, small.model_copy(update={"resource_pool": "gold"})) == \
        "resource_pool: unknown resource pool 'gold' (cluster c)"


def test_place_counts_a_vm_by_its_limit():
    from balancer.engine.compute.placement import place_vm
    from balancer.snapshot.vmspec import VmSpec

    s = snap([{"name": "p1", "cpu_demand_mhz": 2000.0}])
    out = place_vm(s, VmSpec(name="n1", vcpus=4, mem_mb=4096, cpu_demand_mhz=9000.0, cpu_limit_mhz=1000.0))
    assert out.load.cpu == 1000.0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pooled_clusters(), st.integers(1, 5), st.booleans())
def test_no_plan_puts_more_reservation_on_a_host_than_it_has(s, threshold, dpm):
    from balancer.engine.options import DpmOptions

    hosts = [{"name": f"h{i}", "cpu_capacity_mhz": 12000.0, "mem_capacity_mb": 65536.0} for i in range(3)]
    doc = s.model_dump(mode="json", exclude_none=True)
    doc["hosts"] = hosts
    for j, v in enumerate(doc["vms"]):
        v["host"] = f"h{j % 3}"
    s = parse_snapshot(doc)
    reserved = {h["name"]: 0.0 for h in hosts}
    for v in s.vms:
        reserved[v.host] += v.cpu_reservation_mhz if v.powered_on else 0.0
    plan = make_plan(s, PlanOptions(threshold=threshold, time_limit_s=0.3,
                                    dpm=DpmOptions(min_hosts_on=1) if dpm else None))
    after = dict(reserved)
    for m in plan.moves:
        r = s.vm(m.vm).cpu_reservation_mhz if s.vm(m.vm).powered_on else 0.0
        after[m.source] -= r
        after[m.target] += r
        # admission at every step: a host that had its reservations within capacity keeps them so
        assert after[m.target] <= 12000.0 + 1e-6 or after[m.target] <= reserved[m.target] + 1e-6


def test_a_pools_limit_caps_what_may_be_reserved_in_it():
    from balancer.engine.compute.placement import place_vm
    from balancer.snapshot.vmspec import VmSpec

    s = snap([{"name": "p1", "cpu_demand_mhz": 2000.0, "cpu_reservation_mhz": 3000.0, "resource_pool": "lo"}],
             [pool("lo", cpu_limit_mhz=9000.0)])
    spec = VmSpec(name="n1", vcpus=2, mem_mb=4096, cpu_demand_mhz=500.0, cpu_reservation_mhz=6000.0, resource_pool="lo")
    assert place_vm(s, spec).status == "ok"
    out = place_vm(s, spec.model_copy(update={"cpu_reservation_mhz": 6500.0}))
    assert out.status == "impossible" and out.why_not == (
        "resource pool lo: its CPU limit of 9,000 MHz leaves 6,000 MHz to reserve, less than the VM's 6,500 MHz")


def test_the_reports_hosts_table_shows_what_the_planner_balanced():
    from balancer.report.hosts import host_loads

    s = snap([{"name": f"t{i}", "cpu_demand_mhz": 6000.0, "resource_pool": "lo"} for i in range(3)],
             [pool("lo", cpu_limit_mhz=9000.0)])
    plan = make_plan(s, PlanOptions())
    (row,) = host_loads(plan, s)
    assert row.cpu_before == pytest.approx(9000.0 / 30000.0)  # the pool's limit, not the 18 GHz demanded
