"""Storage DRS end to end on the embedded simulated cluster: `recommend` shows storage moves when a
datastore passes the space threshold and none while every one is within it; `evacuate-datastore`
empties one; the service carries storage moves out at `sdrs.automation: full` only."""

from __future__ import annotations

import json

from balancer.journal import Journal
from balancer.snapshot import Snapshot
from helpers import run_cli
from service_helpers import config_of, sim_config, write_config

THRESHOLD = 0.80


def _recommend(tmp_path, **sim) -> tuple[dict, Snapshot]:
    cfg = write_config(tmp_path, sim_config(tmp_path, sim=sim))
    snap_path = tmp_path / "s.json"
    assert run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path)).returncode == 0
    r = run_cli("recommend", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), Snapshot.model_validate(json.loads(snap_path.read_text()))


def test_no_storage_moves_while_every_datastore_is_within_the_threshold(tmp_path):
    plan, snap = _recommend(tmp_path)  # the quick start's 08:00
    assert max(d.used_gb / d.capacity_gb for d in snap.datastores) < THRESHOLD
    assert plan["storage_moves"] == []
    assert {d["name"] for d in plan["datastores"]} == {d.name for d in snap.datastores}


def test_storage_moves_when_a_datastore_passes_the_threshold(tmp_path):
    plan, snap = _recommend(tmp_path, start=230)  # 19:10: ds-01's thin disks have grown past 80 %
    full = {d.name for d in snap.datastores if d.used_gb / d.capacity_gb > THRESHOLD}
    assert full
    assert plan["storage_moves"], plan.get("notes")
    for m in plan["storage_moves"]:
        assert m["reason"] == "space" and {d["source"] for d in m["disks"]} <= full
    after = {d["name"]: d["used_after_gb"] / d["capacity_gb"] for d in plan["datastores"]}
    before = {d["name"]: d["used_before_gb"] / d["capacity_gb"] for d in plan["datastores"]}
    assert max(after.values()) < max(before.values())
    r = run_cli("recommend", "--config", str(tmp_path / "balancer.yaml"))
    assert r.returncode == 0 and "Datastores" in r.stdout and " copy" in r.stdout


def test_with_storage_drs_off_a_full_datastore_gets_a_note_and_no_moves(tmp_path):
    cfg = write_config(tmp_path, sim_config(tmp_path, sim={"start": 230}, sdrs={"automation": "off"}))
    r = run_cli("recommend", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["storage_moves"] == []
    assert any(n.startswith("sdrs automation is off") and "ds-01" in n for n in plan["notes"])


def test_evacuate_datastore_on_the_embedded_cluster(tmp_path):
    cfg = write_config(tmp_path, sim_config(tmp_path))
    r = run_cli("evacuate-datastore", "ds-04", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["moves"] == [] and plan["storage_moves"]
    assert all(m["reason"] == "evacuate" for m in plan["storage_moves"])
    assert not any("no moves allowed" in n for n in plan["notes"])  # host moves are off, disks do move
    r = run_cli("evacuate-datastore", "ds-04", "--config", str(cfg), "--execute", "--format", "json")
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)["results"]
    assert results[-1]["kind"] == "datastore" and results[-1]["outcome"] == "success"
    snap_path = tmp_path / "s.json"
    run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path))
    snap = Snapshot.model_validate(json.loads(snap_path.read_text()))
    assert not any(k.datastore == "ds-04" for v in snap.vms for k in v.disks)
    assert snap.datastores[3].state.value == "maintenance"
    # a datastore in maintenance receives no disk
    r = run_cli("recommend", "--config", str(cfg), "--format", "json")
    assert all(d["target"] != "ds-04" for m in json.loads(r.stdout)["storage_moves"] for d in m["disks"])
    # out of maintenance again: it takes disks once more
    r = run_cli("exit-maintenance", "ds-04", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [(x["subject"], x["action"], x["outcome"]) for x in json.loads(r.stdout)] == [("ds-04", "exit-maintenance", "success")]
    run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path))
    assert Snapshot.model_validate(json.loads(snap_path.read_text())).datastores[3].state.value == "normal"
    r = run_cli("exit-maintenance", "ds-04", "--config", str(cfg))
    assert r.returncode == 2 and "datastore ds-04 is not in maintenance" in r.stderr
    r = run_cli("exit-maintenance", "ds-04", "--datastore", "--config", str(cfg))
    assert r.returncode == 2


def _service_storage_actions(tmp_path, automation: str) -> list:
    from balancer.service import Service

    data = sim_config(tmp_path, sim={"start": 230}, sdrs={"automation": automation})
    Service(config_of(data), cycles=2).run()
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        return [a for c in journal.cycles(10) for a in journal.actions(c.id) if a.kind == "storage"]
    finally:
        journal.close()


def test_the_service_carries_out_storage_moves_only_at_full(tmp_path):
    (tmp_path / "manual").mkdir()
    (tmp_path / "full").mkdir()
    assert _service_storage_actions(tmp_path / "manual", "manual") == []
    done = _service_storage_actions(tmp_path / "full", "full")
    assert done and all(a.state == "success" for a in done)


def test_the_journal_counts_each_cycle_s_planned_storage_moves_and_history_shows_them(tmp_path):
    from balancer.service import Service

    data = sim_config(tmp_path, sim={"start": 230}, sdrs={"automation": "manual"})  # recommend only
    Service(config_of(data), cycles=1).run()
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        [cycle] = journal.cycles(10)
        planned = len(journal.plan(cycle.id).storage_moves)
    finally:
        journal.close()
    assert planned and cycle.planned_storage == planned
    cfg = write_config(tmp_path, data)
    [row] = json.loads(run_cli("history", "--config", str(cfg), "--format", "json").stdout)
    assert row["planned_storage"] == planned
    r = run_cli("history", "--config", str(cfg))
    assert r.returncode == 0 and f"{planned} storage move" in r.stdout


def test_a_datastore_too_full_for_the_others_is_refused_with_the_totals(tmp_path):
    """ds-01 holds more than the other datastores have below their threshold: the one error line says so with
    the totals (not one VM's disks cut in the middle), exit 3, nothing moved."""
    cfg = write_config(tmp_path, sim_config(tmp_path))
    snap_path = tmp_path / "s.json"
    assert run_cli("snapshot", "--config", str(cfg), "--out", str(snap_path)).returncode == 0
    snap = Snapshot.model_validate(json.loads(snap_path.read_text()))
    need = sum(k.space_gb for v in snap.vms for k in v.disks if k.datastore == "ds-01")
    room = sum(max(0.0, THRESHOLD * d.capacity_gb - d.used_gb) for d in snap.datastores if d.name != "ds-01")
    assert need > room  # the embedded cluster's first datastore: the case at hand
    r = run_cli("evacuate-datastore", "ds-01", "--config", str(cfg), "--format", "json")
    assert r.returncode == 3
    line = r.stderr.strip().splitlines()[-1]
    assert len(line) <= 300 and "…" not in line, line
    n = sum(1 for v in snap.vms for k in v.disks if k.datastore == "ds-01")
    assert line.startswith(f"error: cannot evacuate datastore ds-01: its {n} disks take {need:,.0f} GB and the other "
                           f"datastores have {room:,.0f} GB below their space threshold: "), line
