"""Anti-oscillation: cooldown, no going back to a host just left, host swings; engine and service."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.config import SimConfig
from balancer.engine import History, PlanOptions, make_plan
from balancer.journal import ActionRow, Journal
from balancer.service import ClusterCycle
from balancer.journal.past import swinging_hosts, window_demand
from balancer.sources.sim import SimulatedCluster
from service_helpers import config_of, sim_config

OPTIONS = PlanOptions(planner="greedy", max_moves=8, threshold=4)
SNAP = SimulatedCluster(SimConfig()).snapshot()  # 8 hosts, 160 VMs, skewed, one broken mandatory rule
BASE = make_plan(SNAP, OPTIONS)
BALANCE = [m for m in BASE.moves if m.reason == "balance"]


def test_the_base_plan_has_balance_moves_and_a_mandatory_repair():
    assert len(BALANCE) >= 2
    assert any(m.mandatory and m.rule == "web-spread" for m in BASE.moves)


def test_a_cooling_vm_is_not_moved_for_balance_and_the_hold_is_reported():
    cooling = frozenset(m.vm for m in BALANCE)
    plan = make_plan(SNAP, OPTIONS, History(cooling=cooling))
    assert not [m for m in plan.moves if m.vm in cooling]
    held = [s for s in plan.suppressed if s.reason == "cooldown"]
    assert held and {s.vm for s in held} <= cooling


def test_a_cooling_vm_still_moves_for_a_mandatory_reason():
    web = SNAP.rules[0]
    assert web.name == "web-spread"
    plan = make_plan(SNAP, OPTIONS, History(cooling=frozenset(web.vms)))
    repair = [m for m in plan.moves if m.vm in web.vms]
    assert repair and all(m.mandatory for m in repair)
    assert not [v for v in plan.violations_after if v.name == "web-spread"]


def test_a_vm_does_not_go_back_to_a_host_it_left():
    left = {m.vm: frozenset([m.target]) for m in BALANCE}  # as if each had just left its best target
    plan = make_plan(SNAP, OPTIONS, History(left=left))
    assert not [m for m in plan.moves if m.vm in left and m.target in left[m.vm]]
    assert any(s.reason == "oscillation" for s in plan.suppressed)


def test_no_history_means_no_holds():
    assert make_plan(SNAP, OPTIONS, History()).moves == BASE.moves


vm_names = [v.name for v in SNAP.vms]
host_names = [h.name for h in SNAP.hosts]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cooling=st.frozensets(st.sampled_from(vm_names), max_size=20),
       left=st.dictionaries(st.sampled_from(vm_names), st.frozensets(st.sampled_from(host_names), min_size=1),
                            max_size=20))
def test_holds_never_let_a_balance_move_through(cooling, left):
    plan = make_plan(SNAP, OPTIONS, History(cooling=cooling, left=left))
    for m in plan.moves:
        if m.vm in cooling:
            assert m.mandatory, m
        if not m.mandatory:
            assert m.target not in left.get(m.vm, frozenset()), m
    assert {s.reason for s in plan.suppressed} <= {"cooldown", "oscillation", "unorderable"}
    # mandatory repairs are never held back
    assert not [v for v in plan.violations_after if v.kind == "rule" and v.mandatory]


def _row(i: int, cycle: int, vm: str, source: str, target: str) -> ActionRow:
    return ActionRow(i, cycle, "c", 1, "move", vm, source, target, "balance", False, "success", None, 0.0, 0.0,
                     None, None, None, False)


def test_a_host_that_swings_between_giving_and_receiving_is_detected():
    moves = [_row(1, 1, "a", "h1", "h2"), _row(2, 2, "b", "h2", "h1"), _row(3, 3, "c", "h1", "h2")]
    assert swinging_hosts(moves, swings=2) == ["h1", "h2"]
    assert swinging_hosts(moves) == []  # the default needs three changes
    assert swinging_hosts(moves[:2], swings=2) == []  # one change of direction is not a swing yet


def test_dpm_window_demand_is_mean_plus_two_sigma():
    assert window_demand([]) is None
    assert window_demand([(10.0, 1.0), (30.0, 1.0)]) == (40.0, 1.0)


def test_the_cooldown_holds_over_a_replayed_day(tmp_path):
    """A simulated day at 15-minute cycles, fully automated: no VM moves twice within the cooldown
    unless for a mandatory reason, and no VM goes back to a host it left within the window."""
    cooldown, window = 3600.0, 4 * 3600.0
    cfg = config_of(sim_config(tmp_path, sim={"steps_per_cycle": 3, "start": 0},
                               drs={"cooldown": "1h", "oscillation_window": "4h"}))
    journal = Journal(":memory:")
    sim = SimulatedCluster(cfg.sim)
    cycle = ClusterCycle("day", cfg, journal, open_source=lambda: sim)
    held = 0
    for _ in range(96):  # 24 h of 15-minute samples
        res = cycle.run()
        assert res is not None and res.status == "ok", res and res.error
        held += sum(1 for s in res.recommendation.suppressed if s.reason in ("cooldown", "oscillation"))
    moves = journal.recent_actions("day", "move", 0.0, 1e12)
    assert len(moves) >= 10, "the day should need balancing"
    by_vm: dict[str, list[ActionRow]] = defaultdict(list)
    for m in moves:
        by_vm[m.subject].append(m)
    for vm, ms in by_vm.items():
        for earlier, later in zip(ms, ms[1:]):
            if later.cluster_time - earlier.cluster_time < cooldown:
                assert later.mandatory, f"{vm} moved again within the cooldown: {earlier.words} then {later.words}"
        for i, later in enumerate(ms):
            if later.mandatory:
                continue
            for earlier in ms[:i]:
                if earlier.reason == "balance" and later.cluster_time - earlier.cluster_time < window:
                    assert later.target != earlier.source, f"{vm} went back: {earlier.words} then {later.words}"
    assert held > 0, "the holds never had anything to hold back"
