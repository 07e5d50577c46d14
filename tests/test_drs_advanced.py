"""DRS's advanced options (engine/compute/cluster.py, the tallies): the CPU over-commitment limit
(drs.max_vcpus_per_core, hard) and VM distribution (drs.vm_distribution, kept like the headroom) -- in
every planner, DPM, evacuations, placement and apply's replay, after every step."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.checks.replay import check_plan_steps
from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.placement import place_vm
from balancer.engine.options import DpmOptions
from balancer.errors import InputError
from balancer.plan import Move
from balancer.snapshot import parse_snapshot
from balancer.snapshot.vmspec import VmSpec
from helpers import run_cli
from test_engine_properties import _replay, assert_order_of_obligations
from test_repair import repairable


def host(name, cpu=20000, mem=65536, cores=8):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": "on",
            "cpu_cores": cores, "cpu_threads": 2 * cores}


def vm(name, h, vcpus=4, cpu=1000, mem=500, **kw):
    return {"name": name, "host": h, "vcpus": vcpus, "mem_mb": 4096, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def snap(hosts, vms, rules=()):
    return parse_snapshot({"version": 5, "cluster": "t", "hosts": hosts, "vms": vms, "rules": list(rules)})


def wide_and_busy():
    """a: six busy 2-vCPU VMs; b and c: four idle 8-vCPU VMs each (32 vCPUs on 8 cores)."""
    return snap([host("a"), host("b"), host("c")],
                [vm(f"x{i}", "a", vcpus=2, cpu=2500) for i in range(6)]
                + [vm(f"y{i}", "b", vcpus=8, cpu=100) for i in range(4)]
                + [vm(f"z{i}", "c", vcpus=8, cpu=100) for i in range(4)])


def tallies_after_each_step(s, plan, key):
    """Per host, the tally (``key`` of a powered-on VM) before the plan and after each of its moves."""
    where = {v.name: v.host for v in s.vms}
    weight = {v.name: key(v) if v.powered_on else 0 for v in s.vms}
    now = {h.name: 0.0 for h in s.hosts}
    for v in s.vms:
        now[v.host] += weight[v.name]
    seen = [dict(now)]
    for m in sorted(plan.moves, key=lambda m: m.step):
        assert where[m.vm] == m.source
        now[m.source] -= weight[m.vm]
        now[m.target] += weight[m.vm]
        where[m.vm] = m.target
        seen.append(dict(now))
    return seen


def test_the_over_commitment_limit_orders_the_moves_and_is_never_passed():
    s = wide_and_busy()
    free = make_plan(s, PlanOptions(threshold=5))
    assert free.moves[0].vm.startswith("x"), "without the limit a busy VM goes first onto a full host"
    for planner in ("cp-sat", "greedy"):
        plan = make_plan(s, PlanOptions(threshold=5, max_vcpus_per_core=4, planner=planner))
        for state in tallies_after_each_step(s, plan, lambda v: v.vcpus):
            assert max(state.values()) <= 32, (planner, state)
    plan = make_plan(s, PlanOptions(threshold=5, max_vcpus_per_core=4))
    assert {m.vm[0] for m in plan.moves[:2]} == {"y", "z"}, "an idle wide VM leaves b and c first, making room"
    assert math.hypot(plan.imbalance.after.cpu, plan.imbalance.after.mem) < \
        math.hypot(plan.imbalance.before.cpu, plan.imbalance.before.mem)


def test_a_host_above_the_over_commitment_limit_is_a_hard_violation_mended_first():
    s = snap([host("a"), host("b")], [vm(f"w{i}", "a", vcpus=8, cpu=100) for i in range(5)])
    plan = make_plan(s, PlanOptions(threshold=1, max_vcpus_per_core=4))
    before = [v for v in plan.violations_before if v.name == "a"]
    assert [(v.kind, v.hard) for v in before] == [("capacity", True)]
    assert before[0].detail == "40 vCPUs, above its over-commitment limit of 32 (drs.max_vcpus_per_core)"
    assert len(plan.moves) == 1 and plan.moves[0].target == "b" and plan.violations_after == []


def test_a_host_without_cores_in_the_snapshot_has_no_over_commitment_limit():
    hosts = [host("a"), host("b")]
    for h in hosts:
        del h["cpu_cores"], h["cpu_threads"]
    s = snap(hosts, [vm(f"w{i}", "a", vcpus=16, cpu=3000) for i in range(4)])
    plan = make_plan(s, PlanOptions(threshold=5, max_vcpus_per_core=1))
    assert plan.moves and plan.violations_before == []


def test_placement_and_apply_honour_the_over_commitment_limit():
    s = wide_and_busy()
    out = place_vm(s, VmSpec(name="new", vcpus=4, mem_mb=4096, cpu_demand_mhz=100), PlanOptions(max_vcpus_per_core=4))
    why = {r.host: r.why for r in out.rejected}
    assert why["b"] == "36 vCPUs would be above its over-commitment limit of 32 (drs.max_vcpus_per_core)"
    assert [c.host for c in out.hosts] == ["a"]
    plan = make_plan(s, PlanOptions(max_moves=0)).model_copy(
        update={"moves": [Move(step=1, vm="x0", source="a", target="b", reason="balance")]})
    check_plan_steps(s, plan, PlanOptions())  # no limit: the move is fine
    with pytest.raises(InputError, match=r"step 1: moving x0 from a to b puts b at 34 vCPUs would be above its "
                                         r"over-commitment limit of 32"):
        check_plan_steps(s, plan, PlanOptions(max_vcpus_per_core=4))


def test_vm_distribution_spreads_the_count_of_vms():
    # a: eight small VMs, b: one large one; by load alone the cluster is balanced
    s = snap([host("a"), host("b")], [vm(f"s{i}", "a", cpu=1000) for i in range(8)] + [vm("big", "b", cpu=8000)])
    assert make_plan(s, PlanOptions(threshold=3)).moves == []
    plan = make_plan(s, PlanOptions(threshold=3, vm_distribution=0.1))
    before = [v for v in plan.violations_before if v.name == "a"]
    assert [(v.kind, v.detail) for v in before] == [("headroom", "8 VMs, above the VM distribution limit of 5 (drs.vm_distribution)")]
    counts = tallies_after_each_step(s, plan, lambda v: 1)[-1]
    assert max(counts.values()) <= 5 and plan.violations_after == []
    # a mandatory rule comes first: the VMs it keeps together stay together, above the distribution limit
    rule = {"name": "keep", "type": "vm-affinity", "vms": [f"s{i}" for i in range(8)], "mandatory": True}
    plan = make_plan(snap(s.model_dump(mode="json")["hosts"], s.model_dump(mode="json")["vms"], [rule]),
                     PlanOptions(threshold=3, vm_distribution=0.1))
    assert {m.vm for m in plan.moves} <= {"big"}
    assert any(v.kind == "headroom" and v.name == "a" for v in plan.violations_after)


def test_the_config_sets_both_options(tmp_path):
    from balancer.config.plan_options import plan_options
    from service_helpers import config_of, sim_config, write_config

    data = sim_config(tmp_path, drs={"max_vcpus_per_core": 2, "vm_distribution": True, "vm_distribution_tolerance": 20,
                                     "planner": "cp-sat"})
    options = plan_options(config_of(data))
    assert (options.max_vcpus_per_core, options.vm_distribution) == (2, 0.2)
    assert plan_options(config_of(sim_config(tmp_path))).vm_distribution is None
    out = run_cli("recommend", "--config", str(write_config(tmp_path, data)), "--format", "json")
    assert out.returncode == 0, out.stderr
    bad = write_config(tmp_path, {"drs": {"max_vcpus_per_core": 0}}, "bad.yaml")
    out = run_cli("check-config", str(bad))
    assert out.returncode == 2 and "max_vcpus_per_core" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@st.composite
def clusters(draw):
    n = draw(st.integers(3, 7))
    hosts = [host(f"h{i}", cpu=draw(st.sampled_from([10000, 20000, 40000])), cores=draw(st.sampled_from([4, 8, 16])))
             for i in range(n)]
    vms = [vm(f"v{j}", f"h{draw(st.integers(0, n - 1))}", vcpus=draw(st.sampled_from([1, 2, 4, 8])),
              cpu=draw(st.integers(50, 4000)), mem=draw(st.integers(100, 4000)),
              powered_on=draw(st.sampled_from([True] * 6 + [False])))
           for j in range(draw(st.integers(2, 30)))]
    rules = []
    if len(vms) >= 4 and draw(st.booleans()):
        rules.append({"name": "apart", "type": "vm-anti-affinity", "vms": [vms[0]["name"], vms[1]["name"]], "mandatory": True})
    if len(vms) >= 4 and draw(st.booleans()):
        rules.append({"name": "together", "type": "vm-affinity", "vms": [vms[2]["name"], vms[3]["name"]], "mandatory": True})
    return snap(hosts, vms, rules)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(), st.integers(1, 5), st.sampled_from([1.0, 2.0, 4.0]), st.sampled_from(["cp-sat", "greedy"]),
       st.sampled_from(["balance", "dpm", "evacuate", "budget"]), st.sampled_from([None, 0.0, 0.25]))
def test_no_step_of_any_plan_passes_the_over_commitment_limit_that_held(s, threshold, per_core, planner, mode, spread):
    cores = {h.name: h.cpu_cores for h in s.hosts}
    extra = {"dpm": dict(dpm=DpmOptions(max_standby=None)), "evacuate": dict(evacuate=(s.hosts[0].name,)),
             "budget": dict(max_moves=2), "balance": {}}[mode]
    plan = make_plan(s, PlanOptions(threshold=threshold, planner=planner, max_vcpus_per_core=per_core,
                                    vm_distribution=spread, **extra))
    steps = tallies_after_each_step(s, plan, lambda v: v.vcpus)
    for state in steps[1:]:
        for h, n in state.items():
            assert n <= max(per_core * cores[h], steps[0][h]) + 1e-9, (h, n, steps[0][h], plan.moves)
    if spread is not None and mode != "evacuate":
        # the distribution limit is ours, like the headroom: a move makes no host worse than it was, unless it mends
        # something hard (which is named a repair) or balances within the limit
        counts = tallies_after_each_step(s, plan, lambda v: 1)
        on = max(len(s.hosts), 1)
        ceiling = max(math.ceil(sum(counts[0].values()) / on * (1 + spread) - 1e-9), 1)
        hard = any(v.hard for v in plan.violations_before)
        if not hard and mode != "dpm":
            for h in counts[-1]:
                assert counts[-1][h] <= max(ceiling, counts[0][h]), (h, counts, plan.moves)


@settings(max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 12)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.integers(1, 5), st.sampled_from(["cp-sat", "greedy"]), st.sampled_from([None, 2.0, 6.0]),
       st.sampled_from([None, 0.0, 0.3]), st.booleans())
def test_with_the_options_no_plan_breaks_the_order_of_obligations(data, threshold, planner, per_core, spread, dpm):
    # the clusters built to have a repair (test_repair.py), with the tallies on: every step within every
    # ceiling (capacity, headroom, the tallies), no hard obligation that held broken, the headroom and the
    # distribution limit given up only for a hard repair
    s, _ = data.draw(repairable())
    options = PlanOptions(threshold=threshold, planner=planner, max_vcpus_per_core=per_core, vm_distribution=spread,
                          max_moves=data.draw(st.one_of(st.none(), st.integers(0, 30))),
                          dpm=DpmOptions(max_standby=None) if dpm else None)
    plan = make_plan(s, options)
    if plan.status == "infeasible":
        assert plan.moves == [] and plan.conflicts
        return
    assert_order_of_obligations(plan)
    _replay(s, plan, options)
