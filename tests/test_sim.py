"""The embedded simulated cluster: trace replay, memory model, actions change the next snapshot."""

import numpy as np
import pytest

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.sources.sim import SimulatedCluster
from balancer.sources.sim.cluster import VCPU_MHZ, memory_demand
from balancer.sources.sim.traces import load_trace, packaged_days


def test_packaged_days():
    assert len(packaged_days()) == 10 and "20110303" in packaged_days()


def test_cpu_demand_replays_the_trace():
    sim = SimulatedCluster(SimConfig(hosts=3, vms=10, start=10))
    trace = load_trace("20110303")
    snap = sim.snapshot()
    for v_snap, v in zip(snap.vms, sim.vms):
        assert v_snap.cpu_demand_mhz == pytest.approx(trace[v.trace_row, 10] * v.vcpus * VCPU_MHZ, abs=0.1)


def test_clock_advances_and_demand_changes():
    sim = SimulatedCluster(SimConfig(hosts=4, vms=40))
    a = sim.snapshot()
    sim.advance()
    b = sim.snapshot()
    assert b.collected_at > a.collected_at
    assert [v.cpu_demand_mhz for v in a.vms] != [v.cpu_demand_mhz for v in b.vms]


def test_memory_model_bounds():
    for util in (0.0, 0.5, 1.0):
        d = memory_demand(16384, util, 0.3)
        assert 0.25 * 0.85 * 16384 <= d <= 0.85 * 16384


def test_moves_change_the_next_snapshot():
    sim = SimulatedCluster(SimConfig())
    plan = make_plan(sim.snapshot(), PlanOptions(max_moves=4, time_limit_s=1))
    results = sim.execute(plan)
    assert [r.outcome for r in results] == ["success"] * len(plan.moves)
    sim.advance()
    after = sim.snapshot()
    for m in plan.moves:
        assert after.vm(m.vm).host == m.target


def test_stale_move_is_skipped():
    sim = SimulatedCluster(SimConfig())
    plan = make_plan(sim.snapshot(), PlanOptions(max_moves=2, time_limit_s=1))
    first = plan.moves[0]
    # someone else moved the VM meanwhile
    sim.vms[[v.name for v in sim.vms].index(first.vm)].host = [h["name"] for h in sim.hosts].index(first.target)
    results = sim.execute(plan)
    assert results[0].outcome == "skipped" and first.vm in results[0].message


def test_deterministic_for_a_seed():
    a = SimulatedCluster(SimConfig(seed=7)).snapshot().to_json_dict()
    b = SimulatedCluster(SimConfig(seed=7)).snapshot().to_json_dict()
    c = SimulatedCluster(SimConfig(seed=8)).snapshot().to_json_dict()
    assert a == b and a != c


def test_trace_validation(tmp_path):
    from balancer.errors import InputError

    bad = tmp_path / "t.csv"
    bad.write_text("vm,t000,t001\na,1,2\nb,1\n")
    with pytest.raises(InputError, match="line 3"):
        load_trace(str(bad))
    good = tmp_path / "g.csv"
    good.write_text("vm,t000,t001\na,10,20\n")
    assert np.allclose(load_trace(str(good)), [[0.1, 0.2]])


def test_disk_growth_starts_over_with_the_trace_day():
    """Thin disks fill through the day; a day later (the trace starts over) they take what they took then."""
    sim = SimulatedCluster(SimConfig(hosts=4, vms=40, start=200, steps_per_cycle=12))
    first = {d.name: d.used_gb for d in sim.snapshot().datastores}
    for _ in range(24):  # 24 cycles of an hour: one whole day
        sim.advance()
    again = {d.name: d.used_gb for d in sim.snapshot().datastores}
    assert again == pytest.approx(first)
    sim.advance()
    sim.advance()
    assert sum({d.name: d.used_gb for d in sim.snapshot().datastores}.values()) > sum(first.values())
