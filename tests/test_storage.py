"""Storage DRS around the engine: the sdrs config, the simulated cluster's datastores and disks, carrying
out storage moves (premises, apply's replay, the journal, history) and `evacuate-datastore`.

Plans here are built by hand (a Plan with storage moves), so that what is tested is the carrying
out, whatever the storage planner proposes.
"""

from __future__ import annotations

import json

import pytest

from balancer.config import SimConfig, parse_config
from balancer.engine import PlanOptions, make_plan
from balancer.engine.options import StorageOptions
from balancer.errors import InputError
from balancer.checks import check_plan_steps
from balancer.checks.premise import storage_premise
from balancer.journal import Journal
from balancer.plan import CopyEstimate, DiskMove, Move, Plan, StorageMove
from balancer.config.plan_options import plan_options
from balancer.snapshot import Snapshot
from balancer.sources.sim import SimulatedCluster
from balancer.sources.sim.state import attach_state_file
from helpers import run_cli
from service_helpers import sim_config, write_config


def _sim(**kw) -> SimulatedCluster:
    return SimulatedCluster(SimConfig(**kw))


def _empty_plan(snap: Snapshot) -> Plan:
    return make_plan(snap, PlanOptions(max_moves=0, max_repair_moves=0))


def storage_move(snap: Snapshot, vm: str, target: str, step: int = 1, reason: str = "space",
                 disks: list[str] | None = None) -> StorageMove:
    v = snap.vm(vm)
    moving = [d for d in v.disks if disks is None or d.name in disks]
    gb = sum(d.space_gb for d in moving)
    return StorageMove(step=step, vm=vm, reason=reason, detail=f"{moving[0].datastore} is full",
                       disks=[DiskMove(disk=d.name, source=d.datastore, target=target, size_gb=d.space_gb) for d in moving],
                       storage_vmotion=CopyEstimate(seconds=gb * 8 * 1024 / 2000, data_gb=gb))


def _on(snap: Snapshot, datastore: str, disks: int = 1) -> str:
    """A VM with ``disks`` disks, all on ``datastore``."""
    return next(v.name for v in snap.vms if len(v.disks) == disks and all(d.datastore == datastore for d in v.disks))


# --- config -------------------------------------------------------------------------------

def test_the_sdrs_section_maps_to_the_storage_options():
    cfg = parse_config({"sdrs": {"automation": "full", "space_threshold": 0.75, "latency_threshold_ms": 20,
                                 "min_space_difference": 0.1, "copy_mbps": 4000, "keep_disks_together": False,
                                 "max_moves_per_cycle": 3, "io_balancing": False}})
    s = plan_options(cfg).storage
    assert s == StorageOptions(space_threshold=0.75, latency_threshold_ms=20.0, io_balancing=False,
                               min_space_difference=0.1, copy_mbps=4000.0, keep_disks_together=False, max_moves=3)
    assert plan_options(parse_config({"sdrs": {"automation": "off"}})).storage is None
    assert plan_options(parse_config({})).storage == StorageOptions(max_moves=4)  # manual: recommended
    # emptying a datastore: storage moves only, every disk, no compute moves
    ev = plan_options(parse_config({"sdrs": {"automation": "off"}}), evacuate_datastores=("ds-01",))
    assert ev.storage.evacuate == ("ds-01",) and ev.storage.max_moves is None and ev.max_moves == 0 and ev.dpm is None


def test_a_cluster_may_override_the_sdrs_section():
    cfg = parse_config({"sdrs": {"space_threshold": 0.8},
                        "clusters": [{"name": "a"}, {"name": "b", "sdrs": {"automation": "off", "space_threshold": 0.9}}]})
    (_, a), (_, b) = cfg.cluster_configs()
    assert (a.sdrs.automation, a.sdrs.space_threshold) == ("manual", 0.8)
    assert (b.sdrs.automation, b.sdrs.space_threshold) == ("off", 0.9)


def test_check_config_names_the_storage_drs_level(tmp_path):
    path = write_config(tmp_path, {"sdrs": {"automation": "full"}, "journal": {"path": str(tmp_path / "j.sqlite")}})
    r = run_cli("check-config", str(path))
    assert r.returncode == 0 and "Storage DRS full" in r.stdout


# --- the simulated cluster's storage ---------------------------------------------------------

def test_the_simulator_has_datastores_in_a_datastore_cluster_and_a_disk_on_one_of_them_for_every_vm():
    snap = _sim().snapshot()
    names = {d.name for d in snap.datastores}
    assert len(snap.datastores) == 4 and {d.datastore_cluster for d in snap.datastores} == {"sim-datastores"}
    hosts = {h.name for h in snap.hosts}
    for d in snap.datastores:
        assert set(d.hosts) == hosts and 0 < d.free_gb < d.capacity_gb and d.latency_ms is not None
        assert d.provisioned_gb >= d.capacity_gb - d.free_gb
    assert all(v.disks and {k.datastore for k in v.disks} <= names for v in snap.vms)
    assert any(k.thin for v in snap.vms for k in v.disks) and any(not k.thin for v in snap.vms for k in v.disks)
    # the space each datastore reports is the space its disks take
    for d in snap.datastores:
        on = sum(k.space_gb for v in snap.vms for k in v.disks if k.datastore == d.name)
        assert d.used_gb == pytest.approx(on, abs=0.05)


def test_without_datastores_the_simulator_has_no_storage_and_the_same_compute():
    with_storage, without = _sim().snapshot(), _sim(datastores=0).snapshot()
    assert without.datastores == [] and all(not v.disks for v in without.vms)
    strip = lambda s: [(v.name, v.host, v.cpu_demand_mhz, v.mem_demand_mb) for v in s.vms]  # noqa: E731
    assert strip(with_storage) == strip(without)


def test_thin_disks_grow_through_the_day_so_the_fullest_datastore_passes_the_threshold_later():
    morning, evening = _sim(start=96).snapshot(), _sim(start=230).snapshot()
    used = lambda s: {d.name: 1 - d.free_gb / d.capacity_gb for d in s.datastores}  # noqa: E731
    assert all(used(evening)[n] > used(morning)[n] for n in used(morning))
    assert max(used(morning).values()) < 0.80 < max(used(evening).values())
    sim = _sim()
    before = sim.snapshot()
    for _ in range(12):  # an hour of trace
        sim.advance()
    assert sum(d.free_gb for d in sim.snapshot().datastores) < sum(d.free_gb for d in before.datastores)


def test_partial_mounts_put_the_last_datastore_on_half_of_the_hosts_with_its_vms_there():
    snap = _sim(partial_mounts=True).snapshot()
    last = snap.datastores[-1]
    assert len(last.hosts) == len(snap.hosts) // 2
    for v in snap.vms:
        if any(k.datastore == last.name for k in v.disks):
            assert v.host in last.hosts


def test_the_simulator_carries_out_a_storage_move():
    sim = _sim(start=200)
    snap = sim.snapshot()
    vm = _on(snap, "ds-01", disks=2)
    plan = _empty_plan(snap).model_copy(update={"storage_moves": [storage_move(snap, vm, "ds-04")]})
    [res] = sim.execute(plan)
    assert (res.kind, res.subject, res.action, res.outcome) == ("storage", vm, "ds-01 -> ds-04", "success")
    after = sim.snapshot()
    assert {k.datastore for k in after.vm(vm).disks} == {"ds-04"}
    moved = sum(k.space_gb for k in snap.vm(vm).disks)
    free = lambda s, n: next(d.free_gb for d in s.datastores if d.name == n)  # noqa: E731
    assert free(after, "ds-01") == pytest.approx(free(snap, "ds-01") + moved, abs=0.05)
    # carried out again: the disks are there already
    [again] = sim.execute(plan)
    assert again.outcome == "skipped" and again.done


def test_a_host_move_takes_its_disks_along():
    sim = _sim(partial_mounts=True)
    snap = sim.snapshot()
    last = snap.datastores[-1]
    vm = next(v for v in snap.vms if all(k.datastore == last.name for k in v.disks))
    target = next(h.name for h in snap.hosts if h.name not in last.hosts)
    move = Move(step=1, vm=vm.name, source=vm.host, target=target, reason="balance",
                disks=[DiskMove(disk=k.name, source=k.datastore, target="ds-01", size_gb=k.space_gb) for k in vm.disks])
    [res] = sim.execute(_empty_plan(snap).model_copy(update={"moves": [move]}))
    assert res.outcome == "success"
    after = sim.snapshot().vm(vm.name)
    assert after.host == target and {k.datastore for k in after.disks} == {"ds-01"}


@pytest.mark.parametrize("case", ["disk moved since", "target not mounted", "no room", "target in maintenance"])
def test_a_stale_storage_move_is_skipped_with_the_reason(case):
    sim = _sim(partial_mounts=True)
    snap = sim.snapshot()
    last = snap.datastores[-1].name
    vm = next(v for v in snap.vms if v.host not in snap.datastores[-1].hosts and v.disks[0].datastore == "ds-01")
    target = "ds-02"
    if case == "disk moved since":
        sim._move_disks([v.name for v in sim.vms].index(vm.name), [DiskMove(disk=vm.disks[0].name, source="ds-01",
                                                                              target="ds-03", size_gb=1)])
    elif case == "target not mounted":
        target = last
    elif case == "no room":
        # ds-02 nearly full: its capacity just above what is on it now
        sim.storage.datastores[1].capacity_gb = next(d for d in snap.datastores if d.name == "ds-02").used_gb + 1.0
    else:
        sim.storage.datastores[1].state = sim.storage.datastores[1].state.MAINTENANCE
    plan = _empty_plan(snap).model_copy(update={"storage_moves": [storage_move(snap, vm.name, target)]})
    [res] = sim.execute(plan)
    words = {"disk moved since": "is on ds-03, not on ds-01", "target not mounted": f"not mounted by host {vm.host}",
             "no room": "too little", "target in maintenance": "in maintenance"}[case]
    assert res.outcome == "skipped" and words in res.message, res.message
    assert {k.datastore for k in sim.snapshot().vm(vm.name).disks} != {target} or case == "disk moved since"


def test_the_state_file_keeps_disk_placement_and_datastore_states(tmp_path):
    path = tmp_path / "state.json"
    sim = _sim()
    attach_state_file(sim, path)
    snap = sim.snapshot()
    vm = _on(snap, "ds-01")
    sim.execute(_empty_plan(snap).model_copy(update={"storage_moves": [storage_move(snap, vm, "ds-03")]}))
    sim.storage.datastores[3].state = sim.storage.datastores[3].state.MAINTENANCE
    sim.save()
    again = _sim()
    assert attach_state_file(again, path)
    after = again.snapshot()
    assert {k.datastore for k in after.vm(vm).disks} == {"ds-03"}
    assert after.datastores[3].state.value == "maintenance"


def test_storage_premise_reads_the_snapshot():
    snap = _sim().snapshot()
    vm = _on(snap, "ds-01")
    assert storage_premise(snap, storage_move(snap, vm, "ds-02")) is None
    gone = storage_move(snap, vm, "ds-02").model_copy(update={"vm": "ghost"})
    assert storage_premise(snap, gone) == "VM ghost no longer exists"


# --- apply's replay ---------------------------------------------------------------------------

def _replay(snap, moves, **storage):
    plan = _empty_plan(snap).model_copy(update={"storage_moves": moves})
    check_plan_steps(snap, plan, PlanOptions(storage=StorageOptions(**storage)))


def test_replay_refuses_a_step_filling_a_datastore_beyond_the_threshold():
    snap = _sim(start=200).snapshot()
    vms = [v.name for v in snap.vms if v.disks[0].datastore == "ds-01" and all(k.datastore == "ds-01" for k in v.disks)]
    moves = [storage_move(snap, vm, "ds-04", step=i + 1) for i, vm in enumerate(vms[:40])]
    with pytest.raises(InputError, match=r"fills datastore ds-04 to \d+ %, above the 80 % space threshold"):
        _replay(snap, moves, max_moves=None)
    _replay(snap, moves[:2], max_moves=None)  # a few fit
    with pytest.raises(InputError, match="more than the 1 allowed per cycle"):
        _replay(snap, moves[:2], max_moves=1)


def test_replay_refuses_a_disk_on_a_datastore_its_host_does_not_mount():
    snap = _sim(partial_mounts=True).snapshot()
    last = snap.datastores[-1]
    vm = next(v.name for v in snap.vms if v.host not in last.hosts)
    with pytest.raises(InputError, match=f"datastore {last.name}, which its host .* does not mount"):
        _replay(snap, [storage_move(snap, vm, last.name)])
    # a host move to a host that does not mount the VM's datastore, without taking its disks along
    on_last = next(v for v in snap.vms if v.disks[0].datastore == last.name)
    away = next(h.name for h in snap.hosts if h.name not in last.hosts)
    plan = _empty_plan(snap).model_copy(update={"moves": [Move(step=1, vm=on_last.name, source=on_last.host,
                                                               target=away, reason="balance")]})
    with pytest.raises(InputError, match=f"does not mount datastore {last.name}"):
        check_plan_steps(snap, plan, PlanOptions())


def test_replay_refuses_breaking_a_storage_rule_that_holds():
    snap = _sim().snapshot()
    vm = _on(snap, "ds-01", disks=2)
    data = snap.to_json_dict()
    data["rules"].append({"name": "db-disks-together", "type": "vmdk-affinity", "vm": vm})
    snap = Snapshot.model_validate(data)
    split = storage_move(snap, vm, "ds-02", disks=["Hard disk 2"])
    with pytest.raises(InputError, match="storage rule db-disks-together would be broken"):
        _replay(snap, [split], keep_disks_together=False)
    _replay(snap, [storage_move(snap, vm, "ds-02")])  # together: fine


def test_replay_skips_a_stale_storage_move_as_the_executor_does():
    snap = _sim().snapshot()
    vm = _on(snap, "ds-01")
    stale = storage_move(snap, vm, "ds-02")
    stale = stale.model_copy(update={"disks": [d.model_copy(update={"source": "ds-03"}) for d in stale.disks]})
    _replay(snap, [stale])


# --- apply, the journal and history, over the CLI --------------------------------------------

def _sim_cli_config(tmp_path, **sim):
    data = sim_config(tmp_path, sim={"start": 200, **sim})
    return write_config(tmp_path, data)


def test_apply_carries_out_a_storage_move_and_history_shows_it(tmp_path):
    cfg = _sim_cli_config(tmp_path)
    snap_path = tmp_path / "snap.json"
    assert run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path)).returncode == 0
    snap = Snapshot.model_validate(json.loads(snap_path.read_text()))
    vm = _on(snap, "ds-01")
    plan = _empty_plan(snap).model_copy(update={"storage_moves": [storage_move(snap, vm, "ds-03")], "notes": []})
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan.to_json_dict()))
    r = run_cli("apply", str(plan_path), "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    [res] = json.loads(r.stdout)
    assert (res["kind"], res["subject"], res["action"], res["outcome"]) == ("storage", vm, "ds-01 -> ds-03", "success")
    r = run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path))
    assert {k.datastore for k in Snapshot.model_validate(json.loads(snap_path.read_text())).vm(vm).disks} == {"ds-03"}
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        [cycle] = journal.cycles()
        [row] = journal.actions(cycle.id)
        assert (row.kind, row.subject, row.source, row.target, row.state) == ("storage", vm, "ds-01", "ds-03", "success")
        assert row.words == f"storage {vm} ds-01 -> ds-03"
    finally:
        journal.close()
    r = run_cli("history", "--config", str(cfg))
    assert r.returncode == 0 and f"Storage vMotion {vm} ds-01 → ds-03" in r.stdout
    data = json.loads(run_cli("history", "--config", str(cfg), "--format", "json").stdout)
    assert data[-1]["actions"][0]["kind"] == "storage"
    # the same plan again: refused by apply's replay? no: the move is done, so it is skipped as made before
    r = run_cli("apply", str(plan_path), "--config", str(cfg), "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["outcome"] == "skipped"


def test_apply_refuses_a_storage_move_onto_a_full_datastore(tmp_path):
    cfg = _sim_cli_config(tmp_path)
    snap_path = tmp_path / "snap.json"
    run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path))
    snap = Snapshot.model_validate(json.loads(snap_path.read_text()))
    vms = [v.name for v in snap.vms if all(k.datastore == "ds-02" for k in v.disks)][:4]
    moves = [storage_move(snap, vm, "ds-01", step=i + 1) for i, vm in enumerate(vms)]
    plan = _empty_plan(snap).model_copy(update={"storage_moves": moves})
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan.to_json_dict()))
    r = run_cli("apply", str(plan_path), "--config", str(cfg))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "step 1" in r.stderr and "datastore ds-01" in r.stderr and "space threshold" in r.stderr


def test_apply_refuses_a_plan_naming_an_unknown_datastore_or_disk(tmp_path):
    cfg = _sim_cli_config(tmp_path)
    snap_path = tmp_path / "snap.json"
    run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path))
    snap = Snapshot.model_validate(json.loads(snap_path.read_text()))
    vm = _on(snap, "ds-01")
    good = storage_move(snap, vm, "ds-02")
    for bad, words in ((good.model_copy(update={"disks": [good.disks[0].model_copy(update={"target": "ds-99"})]}), "ds-99"),
                       (good.model_copy(update={"disks": [good.disks[0].model_copy(update={"disk": "Hard disk 7"})]}),
                        "Hard disk 7")):
        plan_path = tmp_path / "plan.json"
        plan_path.write_text(json.dumps(_empty_plan(snap).model_copy(update={"storage_moves": [bad]}).to_json_dict()))
        r = run_cli("apply", str(plan_path), "--config", str(cfg))
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --- evacuate-datastore ------------------------------------------------------------------------

def test_evacuate_datastore_names_an_unknown_datastore(tmp_path):
    cfg = _sim_cli_config(tmp_path)
    r = run_cli("evacuate-datastore", "ds-99", "--config", str(cfg))
    assert r.returncode == 2 and "datastore 'ds-99': not in cluster sim-cluster" in r.stderr
    r = run_cli("evacuate-datastore", "ds-01", "--snapshot", "x.json", "--execute")
    assert r.returncode == 2 and "--execute" in r.stderr


def test_datastore_maintenance_waits_for_the_disks_to_leave():
    from balancer.app.evacuate import carry_out_datastore_evacuation

    sim = _sim()
    snap = sim.snapshot()
    on = [v.name for v in snap.vms if any(k.datastore == "ds-04" for k in v.disks)]
    partial = _empty_plan(snap).model_copy(update={"storage_moves": [storage_move(snap, on[0], "ds-03")]})
    *moves, enter = carry_out_datastore_evacuation(sim, partial, "ds-04")
    assert [m.outcome for m in moves] == ["success"]
    assert (enter.kind, enter.subject, enter.outcome, enter.step) == ("datastore", "ds-04", "skipped", 2)
    assert "still on ds-04" in enter.message
    snap = sim.snapshot()
    rest = [storage_move(snap, vm, "ds-03", step=i + 1) for i, vm in enumerate(on[1:])]
    *moves, enter = carry_out_datastore_evacuation(sim, _empty_plan(snap).model_copy(update={"storage_moves": rest}), "ds-04")
    assert all(m.outcome == "success" for m in moves) and enter.outcome == "success"
    assert sim.snapshot().datastores[3].state.value == "maintenance"


def test_replay_accepts_a_host_move_taking_its_disks_to_a_datastore_the_new_host_mounts():
    snap = _sim(partial_mounts=True).snapshot()
    last = snap.datastores[-1]
    vm = next(v for v in snap.vms if all(k.datastore == last.name for k in v.disks))
    away = next(h.name for h in snap.hosts if h.name not in last.hosts)
    along = Move(step=1, vm=vm.name, source=vm.host, target=away, reason="balance",
                 disks=[DiskMove(disk=k.name, source=k.datastore, target="ds-01", size_gb=k.space_gb) for k in vm.disks])
    check_plan_steps(snap, _empty_plan(snap).model_copy(update={"moves": [along]}), PlanOptions())
    onto_last = along.model_copy(update={"disks": [d.model_copy(update={"target": last.name, "source": "ds-01"})
                                                   for d in along.disks]})
    check_plan_steps(snap, _empty_plan(snap).model_copy(update={"moves": [onto_last]}), PlanOptions())  # stale: skipped


@pytest.mark.parametrize("action,state,outcome", [
    ("enter-maintenance", "maintenance", "success"), ("enter-maintenance", "normal", "interrupted"),
    ("exit-maintenance", "normal", "success"), ("exit-maintenance", "maintenance", "interrupted")])
def test_a_datastore_action_left_unfinished_is_settled_from_the_datastore_s_state(action, state, outcome):
    from balancer.journal.store import ActionRow
    from balancer.service.cycle import settle

    snap = _sim().snapshot()
    ds = snap.datastores[0]
    snap = snap.model_copy(update={"datastores": [ds.model_copy(update={"state": ds.state.__class__(state)}),
                                                  *snap.datastores[1:]]})
    row = ActionRow(id=1, cycle_id=1, cluster="sim", step=1, kind="datastore", subject=ds.name, source=None,
                    target=action, reason="maintenance", mandatory=True, state="started", message=None,
                    cluster_time=None, created_at=0.0, started_at=0.0, finished_at=None, seconds=None, recovered=False)
    assert settle(row, snap)[0] == outcome
