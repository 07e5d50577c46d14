"""``drs.model: vm-score`` (#34): after the planner's plan, VMs move off hosts that serve them badly, under the
same obligations and prices as the imbalance mode (engine/compute/scoremode.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.vmscore import cluster_score, snapshot_scores
from balancer.snapshot import parse_snapshot
from test_engine_properties import SETTINGS, _replay, assert_order_of_obligations, clusters


def host(name, cpu=10000.0, mem=65536.0, **kw):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, **kw}


def vm(name, h, cpu=1000.0, mem=2000.0, **kw):
    return {"name": name, "host": h, "vcpus": 4, "mem_mb": 4096.0, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def within_tolerance(**kw):
    """a at 88 % CPU, b and c at 60 %: within threshold 2's imbalance target (0.17) and pairwise gap (30 points),
    so the imbalance mode moves nothing; a's VMs wait 3.25 % of the time (score 83.75)."""
    return parse_snapshot({"version": 6, "cluster": "c", "hosts": [host("a"), host("b"), host("c")],
                           "vms": [vm(f"a{i}", "a", cpu=1100.0) for i in range(8)]
                           + [vm(f"b{i}", "b", cpu=1000.0) for i in range(6)]
                           + [vm(f"c{i}", "c", cpu=1000.0) for i in range(6)], **kw})


def test_the_score_mode_moves_vms_off_a_busy_host_the_imbalance_mode_leaves():
    snap = within_tolerance()
    assert make_plan(snap, PlanOptions(threshold=2)).moves == []
    plan = make_plan(snap, PlanOptions(threshold=2, model="vm-score"))
    assert plan.moves and all(m.source == "a" and m.reason == "balance" for m in plan.moves)
    assert all(m.detail.startswith("VM score 84 → ") for m in plan.moves)
    after = snapshot_scores(snap, {m.vm: m.target for m in plan.moves})
    assert min(after.values()) > min(snapshot_scores(snap).values())
    assert cluster_score(after) > cluster_score(snapshot_scores(snap))
    assert not plan.violations_after


def test_the_score_mode_keeps_the_balancing_cap_and_the_threshold():
    snap = within_tolerance()
    assert len(make_plan(snap, PlanOptions(threshold=2, model="vm-score", max_moves=1)).moves) == 1
    assert make_plan(snap, PlanOptions(threshold=1, model="vm-score")).moves == []
    assert make_plan(snap, PlanOptions(threshold=2, model="vm-score", max_moves=0)).moves == []


def test_the_score_mode_keeps_anti_affinity_and_closed_hosts():
    # every VM of a shares a should anti-affinity rule with a VM on b; c is severe-quarantined: nowhere to go
    snap = within_tolerance(rules=[{"name": f"r{i}", "type": "vm-anti-affinity", "vms": [f"a{i}", f"b{i % 6}"],
                                    "mandatory": False} for i in range(8)])
    options = PlanOptions(threshold=2, model="vm-score", health_remediation="quarantine",
                          health_overrides=(("c", "moderate", "fan"),))
    plan = make_plan(snap, options)
    assert all(m.target != "c" for m in plan.moves)
    assert not any(m.source == "a" and m.target == "b" for m in plan.moves)


@SETTINGS
@given(clusters(), st.integers(2, 5), st.one_of(st.none(), st.integers(0, 6)))
def test_the_score_mode_never_breaks_an_obligation_the_imbalance_mode_keeps(snapshot, threshold, max_moves):
    base = PlanOptions(threshold=threshold, max_moves=max_moves, time_limit_s=0.5)
    ref = make_plan(snapshot, base)
    plan = make_plan(snapshot, PlanOptions(threshold=threshold, max_moves=max_moves, time_limit_s=0.5, model="vm-score"))
    assert plan.status == ref.status
    if plan.status == "infeasible":
        assert not plan.moves
        return
    _replay(snapshot, plan, base)  # every step valid: allowed hosts, capacity, mandatory anti-affinity
    assert_order_of_obligations(plan)
    kept = {(v.kind, v.name) for v in ref.violations_after} | {(v.kind, v.name) for v in plan.violations_before}
    assert {(v.kind, v.name) for v in plan.violations_after} <= kept, "the score mode broke what the imbalance mode keeps"
    if max_moves is not None:
        assert sum(1 for m in plan.moves if m.reason == "balance") <= max_moves


def test_reports_show_the_vms_served_worst_before_and_after():
    from balancer.report.markdown import render_markdown
    from balancer.report.view import build_view

    snap = within_tolerance()
    plan = make_plan(snap, PlanOptions(threshold=2, model="vm-score"))
    view = build_view(plan, snap)
    assert view.scores is not None and view.scores.cluster_after > view.scores.cluster_before
    name, where, before, after = view.scores.worst[0]
    assert name.startswith("a") and before == 83.75
    text = render_markdown(view)
    assert "## VMs served worst" in text and "| 84 → " in text
