"""Planning on each VM's recent demand rather than the latest five-minute sample."""

import statistics
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancer.engine import History, PlanOptions, make_plan
from balancer.journal.past import RecentDemand
from test_engine_cases import host, snap, vm

FAST = dict(time_limit_s=2, threshold=3)


def spiky():
    # a1..a4 spike on h0 in the latest sample: 4 x 2200 MHz = 88 %, h1 at 20 %
    return snap([host("h0"), host("h1")],
                [vm(f"a{i}", "h0", cpu=2200) for i in range(4)] + [vm(f"b{i}", "h1", cpu=1000) for i in range(2)])


def test_a_spike_in_the_latest_sample_is_not_chased_when_the_recent_demand_is_even():
    s = spiky()
    assert make_plan(s, PlanOptions(**FAST)).moves, "on the latest sample h0 needs relief"
    calm = History(vm_demand={**{f"a{i}": (500.0, 1000.0) for i in range(4)},
                              **{f"b{i}": (1000.0, 1000.0) for i in range(2)}})
    plan = make_plan(s, PlanOptions(**FAST), calm)
    assert plan.moves == []
    assert plan.imbalance.before.cpu == pytest.approx(0.0)  # 2000 MHz on each host, judged on the recent demand
    # the greedy baseline (or recent_demand off) plans on the latest sample
    assert make_plan(s, PlanOptions(recent_demand=False, **FAST), calm).moves


def test_recent_demand_never_goes_below_the_reservation_and_missing_vms_use_the_snapshot():
    s = snap([host("h0"), host("h1")],
             [vm("r", "h0", cpu=4000, cpu_reservation_mhz=4000), vm("x", "h0", cpu=4000), vm("y", "h1", cpu=100)])
    plan = make_plan(s, PlanOptions(**FAST), History(vm_demand={"r": (10.0, 1000.0)}))
    # r counts 4000 (its reservation), x 4000 (no recent value): h0 at 80 %, h1 at 1 %
    assert plan.imbalance.before.cpu == pytest.approx((0.80 - 0.01) / 2)


def at(minutes):
    return datetime(2011, 3, 3, 8, 0, tzinfo=timezone.utc).timestamp() + 60 * minutes


def test_recent_demand_is_mean_plus_one_sigma_over_the_window():
    recent = RecentDemand()
    samples = [1000.0, 3000.0, 2000.0, 9000.0]
    out = {}
    for k, cpu in enumerate(samples):
        out = recent.add(snap([host("h0")], [vm("v", "h0", cpu=cpu, mem=500)]), at(5 * k), window=12 * 60)
        if k == 0:
            assert out == {}, "one sample is not a window"
    # the window (12 min) at minute 15 holds the samples of minutes 5, 10 and 15
    cpu = [3000.0, 2000.0, 9000.0]
    mean = sum(cpu) / 3
    sd = (sum((c - mean) ** 2 for c in cpu) / 3) ** 0.5
    assert out["v"] == pytest.approx((mean + sd, 500.0))
    assert recent.add(snap([host("h0")], [vm("v", "h0", cpu=1.0)]), at(20), window=0) == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 300, 300, 300, 600, -300]),  # clock step: repeats and going back too
                          st.lists(st.tuples(st.integers(0, 3), st.floats(0, 5000), st.floats(0, 4000)),
                                   max_size=4, unique_by=lambda r: r[0])),
                min_size=1, max_size=25),
       st.sampled_from([600.0, 1800.0, 7200.0]))
def test_recent_demand_matches_the_window_statistic_over_any_sequence_of_collections(collections, window):
    """Mean + 1 sigma over the VM's samples in (now - window, now), plus the new one; VMs absent now are forgotten."""
    recent, kept, now = RecentDemand(), {}, 0.0
    for step, vms in collections:
        now += step
        s = snap([host("h0")], [vm(f"v{i}", "h0", cpu=cpu, mem=mem) for i, cpu, mem in vms])
        out = recent.add(s, now, window)
        expect = {}
        fresh = {}
        for i, cpu, mem in vms:
            rows = [r for r in kept.get(i, []) if now - window < r[0] < now] + [(now, cpu, mem)]
            fresh[i] = rows
            if len(rows) >= 2:
                c = [r[1] for r in rows]
                m = [r[2] for r in rows]
                expect[f"v{i}"] = (statistics.fmean(c) + statistics.pstdev(c), statistics.fmean(m) + statistics.pstdev(m))
        kept = fresh
        assert out.keys() == expect.keys()
        for name, value in expect.items():
            assert out[name] == pytest.approx(value, rel=1e-9, abs=1e-6)
