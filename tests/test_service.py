"""The service: automation levels, journaled actions, SIGTERM, kill -9 and restart, several clusters."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from balancer.errors import SourceError
from balancer.journal import Journal
from balancer.service import ClusterCycle
from balancer.sources.state import sim_state_path
from balancer.journal.past import build_past
from balancer.snapshot import load_snapshot
from balancer.sources import ClusterTask
from balancer.sources.sim import SimulatedCluster
from balancer.sources.sim.state import attach_state_file
from helpers import run_cli
from service_helpers import ServiceProcess, StillRelocating, config_of, sim_config, started_before_a_crash, write_config


def _cycle(tmp_path: Path, drs: dict | None = None, dpm: dict | None = None, sim: dict | None = None):
    cfg = config_of(sim_config(tmp_path, drs=drs, dpm=dpm, sim=sim))
    journal = Journal(":memory:")
    source = SimulatedCluster(cfg.sim)
    return ClusterCycle("c", cfg, journal, open_source=lambda: source), source, journal


def _placement(source: SimulatedCluster) -> dict[str, str]:
    return {v.name: v.host for v in source.snapshot().vms}


# --- automation levels ------------------------------------------------------------------------------

def test_manual_recommends_and_journals_but_changes_nothing(tmp_path):
    cycle, source, journal = _cycle(tmp_path, drs={"automation": "manual"})
    before = _placement(source)
    res = cycle.run()
    assert res.status == "ok" and res.recommendation.moves
    assert res.executed is None and res.results == []
    assert _placement(source) == before
    assert journal.plan(res.cycle_id).moves == res.recommendation.moves
    assert journal.actions(res.cycle_id) == []


def test_partial_carries_out_only_mandatory_moves(tmp_path):
    cycle, source, journal = _cycle(tmp_path, drs={"automation": "partial"})
    res = cycle.run()
    rec = res.recommendation
    assert any(not m.mandatory for m in rec.moves), "the recommendation also balances"
    assert res.results and all(r.outcome == "success" for r in res.results)
    assert all(m.mandatory for m in res.executed.moves)
    assert {m.rule for m in res.executed.moves} >= {"web-spread"}
    after = _placement(source)
    for m in res.executed.moves:
        assert after[m.vm] == m.target
    assert {a.subject for a in journal.actions(res.cycle_id)} == {m.vm for m in res.executed.moves}
    assert journal.plan(res.cycle_id, "executed") == res.executed


def test_full_carries_out_the_recommendation_within_the_move_cap(tmp_path):
    cycle, source, journal = _cycle(tmp_path, drs={"automation": "full", "max_moves_per_cycle": 3})
    res = cycle.run()
    assert res.executed is res.recommendation
    assert 0 < len(res.results) and len([m for m in res.recommendation.moves if not m.mandatory]) <= 3
    assert [r.subject for r in res.results] == [m.vm for m in res.recommendation.moves]
    after = _placement(source)
    assert all(after[m.vm] == m.target for m in res.recommendation.moves)
    assert Counter(a.state for a in journal.actions(res.cycle_id)) == Counter(success=len(res.results))


@pytest.mark.parametrize("dpm", ["manual", "automatic"])
def test_dpm_power_actions_follow_their_own_level(tmp_path, dpm):
    # a lightly loaded night: DPM wants hosts in standby
    cycle, source, journal = _cycle(tmp_path, drs={"automation": "full"}, sim={"vms": 60, "start": 24},
                                    dpm={"automation": dpm})
    # earlier collections cover the power-off window (40 min), so DPM may power hosts off at once
    from balancer.journal.past import cluster_demand
    now = source.snapshot()
    for k in range(9, 0, -1):
        cid = journal.begin_cycle("c")
        journal.record_collection(cid, now.collected_at.timestamp() - 300 * k, *cluster_demand(now))
        journal.end_cycle(cid, "ok")
    res = cycle.run()
    assert res.recommendation.power, "DPM recommends standby at night"
    power = [r for r in res.results if r.kind == "power"]
    standby = {h.name for h in source.snapshot().hosts if h.state.value == "standby"}
    if dpm == "manual":
        assert power == [] and standby == set()
        assert not [m for m in res.results if m.reason == "dpm"]
    else:
        assert power and all(r.outcome == "success" for r in power)
        assert standby == {r.subject for r in power}
        # the next cycle holds the hosts it just changed (dpm.hold_time, from the journal)
        nxt = cycle.run()
        assert nxt.history.power_hold >= standby


def test_a_failing_source_fails_the_cycle_and_nothing_is_carried_out(tmp_path):
    cfg = config_of(sim_config(tmp_path))
    journal = Journal(":memory:")

    def broken():
        raise SourceError("vcenter 10.0.0.1:443: cannot connect: connection refused")

    res = ClusterCycle("c", cfg, journal, open_source=broken).run()
    assert (res.status, res.phase) == ("error", "collect") and "connection refused" in res.error
    (row,) = journal.cycles(1)
    assert (row.status, row.phase) == ("error", "collect")
    assert journal.counts() == {}


def test_the_history_the_engine_gets_comes_from_the_journal(tmp_path):
    cycle, source, journal = _cycle(tmp_path, drs={"cooldown": "1h"})
    first = cycle.run()
    moved = {r.subject for r in first.results if r.outcome == "success"}
    second = cycle.run()
    assert second.history.cooling == moved
    assert second.history.demand_power_on is not None and second.history.demand_power_off is not None


# --- the simulated cluster's state survives a restart ---------------------------------------------------

def test_simulator_state_is_restored_from_its_file(tmp_path):
    cfg = config_of(sim_config(tmp_path))
    path = sim_state_path(tmp_path / "journal.sqlite", "c")
    a = SimulatedCluster(cfg.sim)
    assert not attach_state_file(a, path)
    plan_source = ClusterCycle("c", cfg, Journal(":memory:"), open_source=lambda: a)
    res = plan_source.run()
    assert res.results
    b = SimulatedCluster(cfg.sim)
    assert attach_state_file(b, path)
    assert _placement(b) == _placement(a) and b.now() == a.now()
    other = config_of(sim_config(tmp_path, sim={"seed": 7}))
    c = SimulatedCluster(other.sim)
    assert not attach_state_file(c, path)  # made for another simulator: start over


# --- the service as a process ---------------------------------------------------------------------------

def _journal_rows(path: Path) -> list[dict]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM actions ORDER BY id")]
    db.close()
    return rows


def test_sigterm_during_a_cycle_exits_0_with_nothing_lost(tmp_path):
    data = sim_config(tmp_path, sim={"action_seconds": "0.4s"}, drs={"interval": "1s"})
    cfg = write_config(tmp_path, data)
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        svc.wait_for(lambda e: e.get("event") == "action" and e.get("outcome") == "success")
        svc.proc.send_signal(signal.SIGTERM)
        code = svc.finish(60)
    finally:
        svc.kill()
    assert code == 0, "".join(svc.raw[-20:])
    assert any(e.get("event") == "service stop" for e in svc.events)
    rows = _journal_rows(tmp_path / "journal.sqlite")
    states = Counter(r["state"] for r in rows)
    assert not states["pending"] and not states["started"], states
    assert states["success"] >= 1
    stopped = [r for r in rows if r["state"] == "skipped"]
    assert all("stopping" in r["message"] for r in stopped)
    # the cluster (the simulator's saved state) shows exactly the moves journaled as done
    state = json.loads(sim_state_path(tmp_path / "journal.sqlite", "sim-cluster").read_text())
    for r in rows:
        if r["state"] == "success":
            assert state["vms"][r["subject"]]["host"] == r["target"]
        elif r["state"] == "skipped":
            assert state["vms"][r["subject"]]["host"] == r["source"]


def test_kill_9_then_restart_repeats_no_action_and_reports_the_unfinished(tmp_path):
    data = sim_config(tmp_path, sim={"action_seconds": "0.4s"}, drs={"interval": "1s", "cooldown": "1h"})
    cfg = write_config(tmp_path, data)
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        first = svc.wait_for(lambda e: e.get("event") == "action" and e.get("outcome") == "success")
        # killed with an action in flight
        svc.wait_for(lambda e: e.get("event") == "action start" and e["step"] > first["step"])
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
    finally:
        svc.kill()
    before = _journal_rows(tmp_path / "journal.sqlite")
    done_before = {(r["subject"], r["source"], r["target"]) for r in before if r["state"] == "success"}
    unfinished = [r for r in before if r["state"] in ("pending", "started")]
    assert done_before and unfinished, "killed in the middle of a plan"

    again = ServiceProcess(cfg, "--cycles", "2", cwd=tmp_path)
    try:
        code = again.finish(120)
    finally:
        again.kill()
    assert code == 0, "".join(again.raw[-30:])
    reported = [e for e in again.events if e.get("event", "").startswith("unfinished action from an earlier run")]
    assert len(reported) == len(unfinished)
    settled = {e["action"]: e["outcome"] for e in again.events if e.get("event") == "unfinished action settled"}
    assert len(settled) == len(unfinished)

    after = _journal_rows(tmp_path / "journal.sqlite")
    assert not [r for r in after if r["state"] in ("pending", "started")]
    new = [r for r in after if r["id"] > before[-1]["id"]]
    redone = [(r["subject"], r["source"], r["target"]) for r in new if r["state"] == "success"]
    assert not set(redone) & done_before, "a completed action was carried out again"
    moved_before = {vm for vm, _, _ in done_before}
    for r in new:
        if r["subject"] in moved_before:
            assert r["mandatory"], f"{r['subject']} moved again within the cooldown"
    # the unfinished actions got an outcome, marked as established after the restart
    recovered = [r for r in after if r["recovered"]]
    assert len(recovered) == len(unfinished)


def test_a_move_the_cluster_still_carries_out_after_a_restart_is_in_flight_not_interrupted(tmp_path):
    cfg = config_of(sim_config(tmp_path))
    journal = Journal(":memory:")
    source = StillRelocating(cfg.sim)
    vm = source.snapshot().vms[0]
    target = next(h.name for h in source.snapshot().hosts if h.name != vm.host)
    aid = started_before_a_crash(journal, "c", vm.name, vm.host, target)
    source.relocating = frozenset({vm.name})
    cycle = ClusterCycle("c", cfg, journal, open_source=lambda: source)
    before = _placement(source)

    res = cycle.run()
    assert [(a.id, a.state) for a in journal.unfinished("c")] == [(aid, "started")], journal.unfinished()
    assert [a.id for a in res.in_flight] == [aid] and res.resolved == []
    # planned, but nothing carried out while the cluster is still moving the VM
    assert res.recommendation.moves and res.results == [] and _placement(source) == before
    assert "still in flight" in journal.cycles(1)[0].note

    # the task ended without the VM on its target (cancelled in vCenter, say): interrupted now
    source.relocating = frozenset()
    res = cycle.run()
    assert [(a.id, outcome) for a, outcome, _ in res.resolved] == [(aid, "interrupted")] and res.in_flight == []
    assert journal.unfinished("c") == [] and res.results


@pytest.mark.parametrize("ended, outcome", [
    # its own task (the id the journal holds) ended in error while the balancer was down: failed, why
    ([ClusterTask("{vm}", "relocate", "RelocateVM_Task", "error", "task-7", "InsufficientResourcesFault")],
     ("failed", "RelocateVM_Task failed after the balancer stopped: InsufficientResourcesFault")),
    # another task of the VM ended in error: not this action's, which was not carried out
    ([ClusterTask("{vm}", "relocate", "RelocateVM_Task", "error", "task-8", "InsufficientResourcesFault")],
     ("interrupted", "not carried out: the balancer stopped while it ran")),
    # its own task succeeded: the task decides, whatever the VM's place shows (#29)
    ([ClusterTask("{vm}", "relocate", "RelocateVM_Task", "success", "task-7")],
     ("success", "RelocateVM_Task succeeded after the balancer stopped")),
    # its own task was cancelled (RequestCanceled): cancelled
    ([ClusterTask("{vm}", "relocate", "RelocateVM_Task", "error", "task-7", "RequestCanceled")],
     ("cancelled", "RelocateVM_Task was cancelled after the balancer stopped")),
])
def test_a_move_whose_task_ended_while_the_balancer_was_down_gets_the_task_s_outcome(tmp_path, ended, outcome):
    cfg = config_of(sim_config(tmp_path))
    journal = Journal(":memory:")
    source = StillRelocating(cfg.sim)
    vm = source.snapshot().vms[0]
    target = next(h.name for h in source.snapshot().hosts if h.name != vm.host)
    aid = started_before_a_crash(journal, "c", vm.name, vm.host, target, task="task-7")
    source.ended = tuple(replace(t, subject=vm.name) for t in ended)

    res = ClusterCycle("c", cfg, journal, open_source=lambda: source).run()
    assert [(a.id, o, why) for a, o, why in res.resolved] == [(aid, *outcome)] and res.in_flight == []
    (row,) = [a for c in journal.cycles(5) for a in journal.actions(c.id) if a.id == aid]
    assert (row.state, row.message, row.task, row.recovered) == (*outcome, "task-7", True)


def test_several_clusters_in_one_service(tmp_path):
    data = sim_config(tmp_path, drs={"interval": "0.5s"})
    del data["sim"]
    data["clusters"] = [{"name": "east", "sim": {"hosts": 4, "vms": 40}},
                        {"name": "west", "sim": {"hosts": 6, "vms": 60, "seed": 3}, "drs": {"automation": "manual"}}]
    cfg = write_config(tmp_path, data)
    r = run_cli("check-config", str(cfg))
    assert r.returncode == 0 and "east" in r.stdout and "west" in r.stdout
    r = run_cli("run", "--config", str(cfg), "--cycles", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    j = Journal(tmp_path / "journal.sqlite")
    cycles = j.cycles(10)
    assert Counter(c.cluster for c in cycles) == {"east": 2, "west": 2}
    assert {c.automation for c in cycles if c.cluster == "west"} == {"manual"}
    assert j.counts("west") == {} and j.counts("east").get("success", 0) > 0
    assert sim_state_path(tmp_path / "journal.sqlite", "east").exists()


@pytest.mark.parametrize("clusters, message", [
    ([{"name": "a"}, {"name": "a"}], "a second cluster named 'a'"),
    ([{"name": "a", "drs": {"migration_threshold": 9}}], "clusters[0] (a).drs.migration_threshold"),
    ([{"name": "a", "drs": {"nonsense": 1}}], "clusters[0] (a).drs.nonsense: unknown field"),
    ([{"name": "v", "source": "vcenter"}], "source is vcenter but there is no vcenter section"),
    ([], "the list is empty"),
])
def test_bad_cluster_lists_are_one_line_errors(tmp_path, clusters, message):
    data = {"clusters": clusters}
    r = run_cli("check-config", str(write_config(tmp_path, data)))
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1


def test_clusters_and_a_top_level_source_do_not_mix(tmp_path):
    r = run_cli("check-config", str(write_config(tmp_path, {"source": "sim", "clusters": [{"name": "a"}]})))
    assert r.returncode == 2 and "use either clusters or the top-level source" in r.stderr


def test_run_rejects_once_with_cycles(tmp_path):
    r = run_cli("run", "--once", "--cycles", "2", "--config", str(write_config(tmp_path, sim_config(tmp_path))))
    assert r.returncode == 2 and "either --once or --cycles" in r.stderr


def test_a_second_service_on_the_same_journal_is_refused(tmp_path):
    cfg = write_config(tmp_path, sim_config(tmp_path, drs={"interval": "1s"}))
    first = ServiceProcess(cfg, cwd=tmp_path)
    try:
        first.wait_for(lambda e: e.get("event") == "service start")
        r = run_cli("run", "--once", "--config", str(cfg), cwd=tmp_path)
        assert r.returncode == 2 and "in use by another balancer run" in r.stderr
    finally:
        first.proc.send_signal(signal.SIGTERM)
        assert first.finish(60) == 0


def test_one_stop_request_sent_twice_is_one_stop(tmp_path):
    # `timeout` sends SIGTERM to the process and then to its group: the same request, twice at once
    data = sim_config(tmp_path, sim={"action_seconds": "0.4s"}, drs={"interval": "1s"})
    svc = ServiceProcess(write_config(tmp_path, data), cwd=tmp_path)
    try:
        svc.wait_for(lambda e: e.get("event") == "action start")
        svc.proc.send_signal(signal.SIGTERM)
        svc.proc.send_signal(signal.SIGTERM)
        code = svc.finish(60)
    finally:
        svc.kill()
    assert code == 0, "".join(svc.raw[-20:])
    assert any(e.get("event") == "service stop" for e in svc.events)
    assert not any("second signal" in (e.get("event") or "") for e in svc.events)
    states = Counter(r["state"] for r in _journal_rows(tmp_path / "journal.sqlite"))
    assert not states["pending"] and not states["started"], states


# --- one-off commands see and journal the service's cluster ----------------------------------------

def _clusters_config(tmp_path: Path) -> Path:
    data = sim_config(tmp_path, drs={"automation": "full"})
    for key in ("source", "sim"):
        data.pop(key, None)
    data["clusters"] = [{"name": "small", "source": "sim", "sim": {"hosts": 3, "vms": 20}},
                        {"name": "mid", "source": "sim", "sim": {"hosts": 4, "vms": 30}}]
    return write_config(tmp_path, data, "clusters.yaml")


def test_one_off_commands_pick_the_cluster_from_the_config(tmp_path):
    single = sim_config(tmp_path)
    single.pop("source", None)
    single.pop("sim", None)
    single["clusters"] = [{"name": "small", "source": "sim", "sim": {"hosts": 3, "vms": 20}}]
    r = run_cli("snapshot", "--config", str(write_config(tmp_path, single, "one.yaml")), "--out", "s.json",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    snap = json.loads((tmp_path / "s.json").read_text())
    assert snap["cluster"] == "small" and len(snap["hosts"]) == 3

    cfg = str(_clusters_config(tmp_path))
    r = run_cli("recommend", "--config", cfg, "--cluster", "mid", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["cluster"] == "mid" and plan["moves"]
    (tmp_path / "plan.json").write_text(r.stdout)

    for args in (["snapshot", "--out", "x.json"], ["recommend"], ["evacuate", "esx01"], ["apply", "plan.json"]):
        r = run_cli(*args, "--config", cfg, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
        assert "small, mid" in r.stderr and "--cluster" in r.stderr, r.stderr
    r = run_cli("recommend", "--config", cfg, "--cluster", "nosuch", cwd=tmp_path)
    assert r.returncode == 2 and "nosuch" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("apply", "plan.json", "--config", cfg, "--cluster", "small", cwd=tmp_path)
    assert r.returncode == 2 and "'mid'" in r.stderr and "'small'" in r.stderr
    r = run_cli("apply", "plan.json", "--config", cfg, "--cluster", "mid", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert results and all(x["outcome"] == "success" for x in results)

    # the moves are the cluster's now: a fresh snapshot shows them, and the journal holds them
    r = run_cli("snapshot", "--config", cfg, "--cluster", "mid", "--out", "after.json", cwd=tmp_path)
    hosts = {v["name"]: v["host"] for v in json.loads((tmp_path / "after.json").read_text())["vms"]}
    assert all(hosts[m["vm"]] == m["target"] for m in plan["moves"])
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        (c,) = journal.cycles(10, "mid")
        assert c.kind == "apply" and c.status == "ok"
        assert [(a.subject, a.target, a.state) for a in journal.actions(c.id)] == \
            [(m["vm"], m["target"], "success") for m in plan["moves"]]
    finally:
        journal.close()
    r = run_cli("history", "--config", cfg, "--cluster", "mid", cwd=tmp_path)
    assert r.returncode == 0 and "apply: ok" in r.stdout
    r = run_cli("history", "--config", cfg, "--cluster", "nosuch", cwd=tmp_path)
    assert r.returncode == 2 and "nosuch" in r.stderr and r.stderr.count("\n") == 1


def test_one_off_commands_see_the_service_cluster_and_their_moves_cool_down(tmp_path):
    data = sim_config(tmp_path, drs={"automation": "manual", "cooldown": "1h"})
    cfg = str(write_config(tmp_path, data))
    r = run_cli("run", "--cycles", "3", "--config", cfg, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("snapshot", "--config", cfg, "--out", "s.json", cwd=tmp_path)
    snap = json.loads((tmp_path / "s.json").read_text())
    assert snap["collected_at"].endswith("08:15:00Z")  # three cycles of 5 trace minutes after 08:00

    r = run_cli("evacuate", "esx01", "--config", cfg, "--execute", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    moved = {x["subject"] for x in json.loads(r.stdout)["results"] if x["kind"] == "move"}
    assert moved
    # the service's next cycle starts from the evacuated cluster and holds the moved VMs back
    data["drs"]["automation"] = "full"
    cfg = str(write_config(tmp_path, data))
    r = run_cli("run", "--once", "--config", cfg, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        *_, evac, last = journal.cycles(10)
        assert evac.kind == "evacuate" and evac.status == "ok"
        assert last.kind == "cycle" and last.status == "ok"
        # the cycle's past counts the evacuation's moves: they are cooling down
        snap = load_snapshot(tmp_path / "s.json")
        past = build_past(journal, "sim-cluster", evac.cluster_time, snap, config_of(data).drs, config_of(data).dpm)
        assert moved <= past.history.cooling
        plan = journal.plan(last.id)
        assert not moved & {m.vm for m in plan.moves if not m.mandatory}
    finally:
        journal.close()
    state = json.loads(sim_state_path(tmp_path / "journal.sqlite", "sim-cluster").read_text())
    assert state["hosts"]["esx01"]["state"] == "maintenance"
    assert not moved & {v for v, s in state["vms"].items() if s["host"] == "esx01"}


def test_acting_on_the_simulator_while_the_service_runs_it_is_refused(tmp_path):
    cfg = write_config(tmp_path, sim_config(tmp_path, drs={"interval": "1s"}))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        svc.wait_for(lambda e: e.get("event") == "cycle end")
        r = run_cli("recommend", "--config", str(cfg), "--format", "json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        (tmp_path / "plan.json").write_text(r.stdout)
        r = run_cli("apply", "plan.json", "--config", str(cfg), cwd=tmp_path)
        assert r.returncode == 2 and "run by `balancer run`" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    finally:
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.finish(60) == 0


def test_a_host_whose_dpm_override_is_manual_is_recommended_but_not_powered_off(tmp_path):
    # the same night as above, DPM automatic, but every host's own override is manual
    manual = {f"esx{i:02d}": "manual" for i in range(1, 9)}
    cycle, source, journal = _cycle(tmp_path, drs={"automation": "full"}, sim={"vms": 60, "start": 24, "dpm_hosts": manual},
                                    dpm={"automation": "automatic"})
    from balancer.journal.past import cluster_demand
    now = source.snapshot()
    assert {h.dpm for h in now.hosts} == {"manual"}
    for k in range(9, 0, -1):
        cid = journal.begin_cycle("c")
        journal.record_collection(cid, now.collected_at.timestamp() - 300 * k, *cluster_demand(now))
        journal.end_cycle(cid, "ok")
    res = cycle.run()
    standby = [p for p in res.recommendation.power if p.action == "standby"]  # the pace may take several
    assert standby and all("DPM override is manual" in p.detail for p in standby)
    assert not [r for r in res.results if r.kind == "power"]
    assert all(h.state.value == "on" for h in source.snapshot().hosts)
    assert not [m for m in res.results if m.reason == "dpm"]
