"""`apply` re-validates a saved plan against a fresh snapshot: its age, and every step replayed with the
engine's capacity and rule checks. Bad plans are refused with one line naming the step, VM and host."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.errors import InputError
from balancer.checks import check_plan_age, check_plan_steps
from balancer.plan import Plan
from balancer.snapshot import Snapshot
from balancer.sources.sim import SimulatedCluster
from helpers import DATA, example_snapshot, plan_actions, run_cli


@pytest.fixture(scope="module")
def sim_snapshot() -> Snapshot:
    return SimulatedCluster(SimConfig()).snapshot()


def with_actions(plan: Plan, *actions) -> Plan:
    """``plan`` with its actions replaced: (vm, source, target) moves and (host, action) power actions, in order."""
    return plan.model_copy(update=plan_actions(*actions))


@pytest.mark.parametrize("threshold,planner", [(1, "cp-sat"), (3, "cp-sat"), (5, "cp-sat"), (5, "greedy")])
def test_the_engines_own_plans_pass_the_replay(sim_snapshot, threshold, planner):
    options = PlanOptions(threshold=threshold, planner=planner, time_limit_s=1.0, max_moves=30)
    plan = make_plan(sim_snapshot, options)
    assert plan.moves
    check_plan_steps(sim_snapshot, plan, options)  # no error


def test_an_evacuation_plan_passes_the_replay():
    snap = Snapshot.model_validate(example_snapshot())
    options = PlanOptions(evacuate=("esx03",))
    plan = make_plan(snap, options)
    assert plan.status == "ok" and plan.moves and plan.power[-1].action == "enter-maintenance"
    check_plan_steps(snap, plan, PlanOptions())


def test_moves_onto_the_smallest_host_are_refused_at_the_first_overload(sim_snapshot):
    small = min(sim_snapshot.hosts, key=lambda h: h.cpu_capacity_mhz).name
    moves = [(v.name, v.host, small) for v in sim_snapshot.vms if v.host != small and v.powered_on][:120]
    plan = with_actions(make_plan(sim_snapshot, PlanOptions(threshold=1)), *moves)
    with pytest.raises(InputError) as err:
        check_plan_steps(sim_snapshot, plan, PlanOptions(max_moves=None))
    msg = str(err.value)
    step = int(msg.split("step ")[1].split(":")[0])
    vm = moves[step - 1][0]
    assert f"moving {vm} from {moves[step - 1][1]} to {small}" in msg
    assert f"puts {small} at" in msg and "above its 90 % limit" in msg
    assert step > 1  # the first moves still fit
    # ... and the move cap of the cycle refuses it before any replay
    with pytest.raises(InputError, match="120 balancing moves .* more than the 8 allowed"):
        check_plan_steps(sim_snapshot, plan, PlanOptions(max_moves=8))


def test_a_move_breaking_a_mandatory_rule_that_holds_is_refused(sim_snapshot):
    plan = make_plan(sim_snapshot, PlanOptions(threshold=1))
    repair = next(m for m in plan.moves if m.rule == "web-spread")
    fixed = with_actions(plan, (repair.vm, repair.source, repair.target))
    check_plan_steps(sim_snapshot, fixed, PlanOptions())
    back = with_actions(plan, (repair.vm, repair.source, repair.target), (repair.vm, repair.target, repair.source))
    with pytest.raises(InputError, match=f"step 2: moving {repair.vm} from {repair.target} to {repair.source} "
                                         "breaks the mandatory rule web-spread"):
        check_plan_steps(sim_snapshot, back, PlanOptions())


def test_an_affinity_split_at_the_end_is_refused():
    snap = Snapshot.model_validate(example_snapshot())
    plan = make_plan(snap, PlanOptions(threshold=1))
    # app-01 (esx01) and app-02 (esx02) are kept together by app-together: first bring them together
    together = with_actions(plan, ("app-02", "esx02", "esx03"), ("app-01", "esx01", "esx03"))
    check_plan_steps(snap, together, PlanOptions())
    moved = snap.model_copy(update={"vms": [v.model_copy(update={"host": "esx03"}) if v.name.startswith("app-") else v
                                            for v in snap.vms]})
    split = with_actions(plan, ("app-01", "esx03", "esx02"))
    with pytest.raises(InputError, match="mandatory rule app-together would be broken"):
        check_plan_steps(moved, split, PlanOptions())


def test_stale_moves_are_skipped_by_the_replay_as_by_the_executor(sim_snapshot):
    plan = make_plan(sim_snapshot, PlanOptions(threshold=1))
    small = min(sim_snapshot.hosts, key=lambda h: h.cpu_capacity_mhz).name
    vm = next(v for v in sim_snapshot.vms if v.host != small and v.powered_on)
    wrong_source = next(h.name for h in sim_snapshot.hosts if h.name not in (vm.host, small))
    # the VM is not where the plan thinks: the executor will skip the move, so it cannot overload anything
    check_plan_steps(sim_snapshot, with_actions(plan, (vm.name, wrong_source, small)), PlanOptions())


def test_a_host_powered_on_by_the_plan_may_receive_its_moves():
    data = example_snapshot()
    data["hosts"][2]["state"] = "standby"
    for v in data["vms"]:
        if v["host"] == "esx03":
            v["host"] = "esx02"
    snap = Snapshot.model_validate(data)
    plan = make_plan(snap, PlanOptions(threshold=1))
    check_plan_steps(snap, with_actions(plan, ("esx03", "power-on"), ("batch-01", "esx01", "esx03")), PlanOptions())
    with pytest.raises(InputError, match="step 3: moving web-02 from esx01 to esx03 breaks the mandatory rule web-spread"):
        check_plan_steps(snap, with_actions(plan, ("esx03", "power-on"), ("web-01", "esx01", "esx03"),
                                            ("web-02", "esx01", "esx03")), PlanOptions())


# --- age -------------------------------------------------------------------------------------


def _aged(plan: Plan, collected_at: str | None) -> Plan:
    return plan.model_copy(update={"collected_at": collected_at})


def test_plan_age_is_judged_on_the_clusters_clock(sim_snapshot):
    plan = make_plan(sim_snapshot, PlanOptions(threshold=1))
    now = sim_snapshot.collected_at
    assert check_plan_age(sim_snapshot, plan, 900) == 0
    assert check_plan_age(sim_snapshot, _aged(plan, (now - timedelta(minutes=10)).isoformat()), 900) == 600
    with pytest.raises(InputError, match="1200 s old \\(limit 900 s\\)"):
        check_plan_age(sim_snapshot, _aged(plan, (now - timedelta(minutes=20)).isoformat()), 900)
    with pytest.raises(InputError, match="has no collected_at"):
        check_plan_age(sim_snapshot, _aged(plan, None), 900)
    with pytest.raises(InputError, match="3600 s later than the cluster's clock"):
        check_plan_age(sim_snapshot, _aged(plan, (now + timedelta(hours=1)).isoformat()), 900)
    # a small clock skew is tolerated; a time without a zone is UTC
    assert check_plan_age(sim_snapshot, _aged(plan, (now + timedelta(seconds=30)).isoformat()), 900) == -30
    naive = now.astimezone(timezone.utc).replace(tzinfo=None) - timedelta(seconds=5)
    assert check_plan_age(sim_snapshot, _aged(plan, naive.isoformat()), 900) == 5
    assert isinstance(now, datetime)


# --- the command line ------------------------------------------------------------------------


def _one_line_exit_2(r, needle: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def made_plan(tmp_path_factory) -> dict:
    """A plan `recommend` made for the embedded simulated cluster."""
    d = tmp_path_factory.mktemp("plan")
    r = run_cli("recommend", "--format", "json", "--time-limit", "1", "--out", str(d / "p.json"), cwd=d)
    assert r.returncode == 0, r.stderr
    return json.loads((d / "p.json").read_text())


def test_apply_refuses_a_move_back_that_breaks_the_rule(made_plan, tmp_path):
    first = made_plan["moves"][0]
    assert first["rule"] == "web-spread"
    back = dict(first, step=2, source=first["target"], target=first["source"], reason="balance")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(dict(made_plan, moves=[first, back], power=[])))
    r = run_cli("apply", str(path), cwd=tmp_path)
    _one_line_exit_2(r, f"step 2: moving {first['vm']} from {first['target']} to {first['source']} breaks the "
                        "mandatory rule web-spread")
    assert not (tmp_path / "balancer-journal.sim-cluster.sim-state.json").exists() or r.stdout == ""


def test_apply_refuses_a_plan_without_collection_time(made_plan, tmp_path):
    plan = {k: v for k, v in made_plan.items() if k != "collected_at"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(plan))
    _one_line_exit_2(run_cli("apply", str(path), "--max-age", "1s", cwd=tmp_path), "has no collected_at")


def test_apply_takes_max_age_in_plain_seconds_and_says_when_there_is_nothing_to_do(made_plan, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(dict(made_plan, moves=[], power=[])))
    r = run_cli("apply", str(path), "--max-age", "900", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "nothing to do" in r.stderr
    r = run_cli("apply", str(path), "--max-age", "900", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout) == []


PLAN_CASES = {
    "step as a string": (lambda p: p["moves"][0].update(step="1"), "moves[0].step"),
    "no-op move": (lambda p: p["moves"][0].update(target=p["moves"][0]["source"]), "moves[0]"),
    "collected_at not a time": (lambda p: p.update(collected_at="yesterday"), "collected_at"),
    "negative vMotion data": (lambda p: p["moves"][0]["vmotion"].update(data_mb=-5), "moves[0].vmotion.data_mb"),
    "negative disk size": (lambda p: p["moves"][0].update(disks=[{"disk": "Hard disk 1", "source": "ds-01", "target": "ds-02",
                                                                  "size_gb": -5}]), "moves[0].disks[0].size_gb"),
    "evacuate result": (lambda p: (p.clear(), p.update(plan={"version": 1}, results=[])), "evacuate --execute"),
}


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_bad_plan_files_are_one_line(made_plan, tmp_path, case):
    mutate, needle = PLAN_CASES[case]
    plan = json.loads(json.dumps(made_plan))
    mutate(plan)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(plan))
    _one_line_exit_2(run_cli("apply", str(path), cwd=tmp_path), needle)


def test_example_snapshot_is_unchanged_by_the_checks():
    # the shipped example stays valid under the demand and capacity bounds
    Snapshot.model_validate(json.loads((DATA / "example-snapshot.json").read_text()))
