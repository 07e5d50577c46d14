"""The journal: cycles, plans and actions with outcomes; recovery after a crash; `balancer history`."""

import json

import pytest

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.errors import InputError
from balancer.plan.result import ActionResult
from balancer.journal import Journal
from balancer.journal.schema import SCHEMA_VERSION
from balancer.sources.sim import SimulatedCluster
from helpers import run_cli
from service_helpers import config_of, sim_config, write_config


def _plan():
    snap = SimulatedCluster(SimConfig(hosts=5, vms=50)).snapshot()
    return make_plan(snap, PlanOptions(planner="greedy", max_moves=4))


def test_cycle_plan_and_actions_round_trip(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    plan = _plan()
    assert len(plan.moves) >= 2
    cid = j.begin_cycle("c1", "full", "off")
    j.record_collection(cid, 1000.0, 5.0, 6.0)
    j.record_plan(cid, "c1", "recommended", plan)
    ids = j.add_actions(cid, "c1", plan, 1000.0)
    first, second = plan.moves[0], plan.moves[1]
    j.action_started(ids[first.step])
    assert j.action_finished(ids[first.step], ActionResult(first.step, "move", first.vm, "x", "success", first.reason))
    # an outcome is recorded once
    assert not j.action_finished(ids[first.step], ActionResult(first.step, "move", first.vm, "x", "failed"))
    j.end_cycle(cid, "ok")
    j.close()

    j = Journal(tmp_path / "j.sqlite")
    (c,) = j.cycles(5)
    assert (c.cluster, c.status, c.planned_moves, c.demand_cpu_mhz) == ("c1", "ok", len(plan.moves), 5.0)
    assert j.plan(cid).moves == plan.moves
    states = {a.step: a.state for a in j.actions(cid)}
    assert states[first.step] == "success" and states[second.step] == "pending"
    moves = j.recent_actions("c1", "move", 0.0, 2000.0)
    assert [m.subject for m in moves] == [first.vm]
    assert j.demand_samples("c1", 0.0, 2000.0) == [(5.0, 6.0)]
    assert j.demand_samples("c1", 1001.0, 2000.0) == []


def test_recover_closes_running_cycles_and_returns_unfinished_actions(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    plan = _plan()
    cid = j.begin_cycle("c1")
    ids = j.add_actions(cid, "c1", plan, 10.0)
    j.action_started(ids[plan.moves[0].step])
    j.close()  # as if the process died here

    j = Journal(tmp_path / "j.sqlite")
    unfinished = j.recover()
    assert {a.state for a in unfinished} == {"started", "pending"}
    assert unfinished[0].words.startswith(f"move {plan.moves[0].vm} ")
    assert j.cycles(1)[0].status == "interrupted"
    j.resolve(unfinished[0].id, "success", "found completed")
    assert len(j.unfinished()) == len(unfinished) - 1
    assert j.actions(cid)[0].recovered


def test_one_service_per_journal(tmp_path):
    a = Journal(tmp_path / "j.sqlite")
    a.lock()
    b = Journal(tmp_path / "j.sqlite")
    with pytest.raises(InputError, match="in use by another balancer run"):
        b.lock()
    a.close()
    b.lock()  # free again
    b.close()


def test_journal_in_a_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Journal(tmp_path / "nope" / "j.sqlite")


def test_not_a_journal_is_one_clear_error(tmp_path):
    bad = tmp_path / "j.sqlite"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a usable journal"):
        Journal(bad)


def test_history_command_prints_the_journal(tmp_path):
    cfg = write_config(tmp_path, sim_config(tmp_path, drs={"interval": "0.2s"}))
    r = run_cli("run", "--config", str(cfg), "--cycles", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("history", "--config", str(cfg), "--format", "json", "--last", "5")
    assert r.returncode == 0, r.stderr
    cycles = json.loads(r.stdout)
    assert [c["status"] for c in cycles] == ["ok", "ok"]
    assert cycles[0]["actions"] and all(a["state"] == "success" for a in cycles[0]["actions"])
    # times as ISO 8601 text in UTC, not epoch seconds
    import re

    for c in cycles:
        for key in ("started_at", "finished_at", "cluster_time"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", c[key]), (key, c[key])
    # the table ends its cycles with a count over the whole journal, naming the last cycle that acted
    done = sum(len(c["actions"]) for c in cycles)
    r = run_cli("history", "--config", str(cfg), "--last", "1")
    assert r.returncode == 0, r.stderr
    assert f"the whole journal: 2 cycles, {done} actions carried out successfully, the last in cycle" in r.stdout


def test_action_log_lines_label_what_the_action_took_and_its_prediction(tmp_path):
    cfg = write_config(tmp_path, sim_config(tmp_path, drs={"interval": "0.2s"}))
    r = run_cli("run", "--config", str(cfg), "--once", "--log-format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    actions = [e for e in map(json.loads, r.stderr.splitlines()) if e.get("event") == "action"]
    moves = [e for e in actions if e["kind"] == "move"]
    assert moves and "seconds" not in moves[0]
    for e in moves:
        # the simulator acts at once (sim.action_seconds 0): what it took is far less than the prediction
        assert 0 <= e["took_s"] < e["predicted_s"], e
    # `recommend` next on the same cluster says it starts from the service's state, and why figures differ
    r = run_cli("recommend", "--config", str(cfg), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    notes = json.loads(r.stdout)["notes"]
    assert any(n.startswith("started from the service's saved state") and "drs.demand_window (2 h" in n
               for n in notes), notes
    r = run_cli("history", "--config", str(cfg), "--last", "1")
    assert r.returncode == 0 and "sim-cluster" in r.stdout and "cycle" in r.stdout


def test_history_without_a_journal_exits_2_with_one_line(tmp_path):
    data = sim_config(tmp_path)
    data["journal"]["path"] = str(tmp_path / "missing.sqlite")
    r = run_cli("history", "--config", str(write_config(tmp_path, data)))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "no such file" in r.stderr


def test_config_sections_of_the_service_validate(tmp_path):
    cfg = config_of(sim_config(tmp_path))
    assert cfg.metrics.listen.endswith(":0") and cfg.service.shutdown_wait == 30.0


def test_a_journal_of_the_first_schema_opens_and_gains_cycle_kinds(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # a schema-1 journal: cycles without a kind
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO meta VALUES ('schema', '1');"
                     "CREATE TABLE cycles (id INTEGER PRIMARY KEY AUTOINCREMENT, cluster TEXT NOT NULL, "
                     "started_at REAL NOT NULL, finished_at REAL, cluster_time REAL, status TEXT NOT NULL, phase TEXT, "
                     "error TEXT, automation TEXT, dpm_automation TEXT, demand_cpu_mhz REAL, demand_mem_mb REAL, "
                     "imbalance_cpu REAL, imbalance_mem REAL, imbalance_after_cpu REAL, imbalance_after_mem REAL, "
                     "planned_moves INTEGER, planned_power INTEGER, note TEXT);"
                     "INSERT INTO cycles (cluster, started_at, finished_at, status) VALUES ('c1', 1.0, 2.0, 'ok');")
    db.commit()
    db.close()
    j = Journal(path)
    try:
        (old,) = j.cycles(10)
        assert old.kind == "cycle" and j.last_success("c1") == 2.0
        cid = j.begin_cycle("c1", kind="apply")
        j.end_cycle(cid, "ok")
        assert [c.kind for c in j.cycles(10)] == ["cycle", "apply"]
        assert j.last_success("c1") == 2.0  # a one-off command's cycle is not the service's success
        assert j.last_success("c2") is None
    finally:
        j.close()


def test_a_journal_of_the_third_schema_gains_the_planned_storage_count(tmp_path):
    import sqlite3

    from balancer.journal.schema import MIGRATIONS, statements

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # a schema-3 journal: cycles without planned_storage, one cycle in it
    for _, _, sql in MIGRATIONS[:3]:
        for stmt in statements(sql, "sqlite"):
            db.execute(stmt)
    db.execute("INSERT INTO meta VALUES ('schema', '3')")
    db.execute("INSERT INTO cycles (cluster, started_at, finished_at, status, planned_moves, planned_power) "
               "VALUES ('c1', 1.0, 2.0, 'ok', 2, 0)")
    db.commit()
    db.close()
    j = Journal(path)
    try:
        (old,) = j.cycles(10)
        assert (old.planned_moves, old.planned_storage) == (2, None)  # not counted then
        plan = _plan()
        cid = j.begin_cycle("c1")
        j.record_plan(cid, "c1", "recommended", plan)
        j.end_cycle(cid, "ok")
        assert j.cycles(10)[-1].planned_storage == len(plan.storage_moves)
        assert j.db.one("SELECT value FROM meta WHERE key='schema'")["value"] == str(SCHEMA_VERSION)
    finally:
        j.close()


def test_actions_of_a_cycle_in_progress_are_not_unfinished(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    plan = _plan()
    cid = j.begin_cycle("c1", kind="apply")  # say, `balancer apply` next to the service
    j.add_actions(cid, "c1", plan, 1000.0)
    assert j.unfinished("c1") == []
    j.recover()  # the next service start: a cycle still running then was cut short
    assert len(j.unfinished("c1")) == len(plan.actions)
    j.close()


def test_history_of_an_unknown_cluster_is_an_error(tmp_path):
    j = Journal(tmp_path / "journal.sqlite")
    cid = j.begin_cycle("c1")
    j.end_cycle(cid, "ok")
    j.close()
    cfg = write_config(tmp_path, sim_config(tmp_path))
    r = run_cli("history", "--config", str(cfg), "--cluster", "nosuch")
    assert r.returncode == 2 and "nosuch" in r.stderr and "c1" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("history", "--config", str(cfg), "--cluster", "c1")
    assert r.returncode == 0 and "c1" in r.stdout


def test_a_plan_an_earlier_version_stored_with_a_control_character_reads_back_escaped(tmp_path):
    # earlier versions accepted a line break in a name; such a stored plan still reads back, escaped
    j = Journal(tmp_path / "j.sqlite")
    plan = _plan()
    cid = j.begin_cycle("c1", "full", "off")
    data = json.loads(plan.model_dump_json())
    data["moves"][0]["vm"] = "web\n01"
    j._store_plan(cid, "recommended", data)
    j.end_cycle(cid, "ok")
    assert j.plan(cid).moves[0].vm == "web\\n01"
    with pytest.raises(Exception, match="control character"):
        type(plan).model_validate(data)  # a plan file with it is still refused
