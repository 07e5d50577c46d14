"""The journal on a real PostgreSQL: the same API as on SQLite, migrations, the leader lease and fencing."""

from __future__ import annotations

import time

import pytest

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.plan.result import ActionResult
from balancer.journal import Journal, Lease, LeaseLost
from balancer.journal.schema import SCHEMA_VERSION
from balancer.sources.sim import SimulatedCluster
from helpers import run_cli
from postgres_harness import PASSWORD, PASSWORD_ENV
from service_helpers import sim_config, write_config

pytestmark = pytest.mark.integration


def _plan():
    snap = SimulatedCluster(SimConfig(hosts=5, vms=50)).snapshot()
    return make_plan(snap, PlanOptions(planner="greedy", max_moves=4))


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_factory(request, tmp_path):
    """Journals of either kind, opened on the same database each time."""
    opened: list[Journal] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None

    def open_() -> Journal:
        j = Journal(tmp_path / "j.sqlite", url=url, password=PASSWORD if url else None)
        opened.append(j)
        return j

    yield open_
    for j in opened:
        j.close()


def test_the_same_api_on_both_databases(journal_factory):
    j = journal_factory()
    plan = _plan()
    cid = j.begin_cycle("c1", "full", "off")
    j.record_collection(cid, 1000.0, 5.0, 6.0)
    j.record_plan(cid, "c1", "recommended", plan)
    j.record_plan(cid, "c1", "recommended", plan)  # stored again: replaced
    ids = j.add_actions(cid, "c1", plan, 1000.0)
    first = plan.moves[0]
    assert j.action_started(ids[first.step])
    assert j.action_finished(ids[first.step], ActionResult(first.step, "move", first.vm, "x", "success", first.reason))
    assert not j.action_finished(ids[first.step], ActionResult(first.step, "move", first.vm, "x", "failed"))
    j.end_cycle(cid, "ok")
    j.close()

    j = journal_factory()
    (c,) = j.cycles(5)
    assert (c.cluster, c.status, c.kind, c.planned_moves, c.demand_cpu_mhz) == ("c1", "ok", "cycle", len(plan.moves), 5.0)
    assert c.planned_storage == len(plan.storage_moves)
    assert j.plan(cid) == plan and j.clusters() == ["c1"]
    assert j.last_success("c1") is not None and j.last_success("c2") is None
    rows = j.actions(cid)
    assert [a.step for a in rows] == [a.step for a in plan.actions]
    assert rows[0].state == "success" and rows[0].words.startswith(f"move {first.vm} ")
    assert j.counts("c1") == {"success": 1, "pending": len(plan.actions) - 1}
    assert [a.subject for a in j.recent_actions("c1", "move", 0, 2000)] == [first.vm]
    assert j.demand_samples("c1", 0, 2000) == [(5.0, 6.0)] and j.collection_times("c1", 2000, 5) == [1000.0]
    # a crash: the next start closes the cycle left running, its actions are unfinished
    cid2 = j.begin_cycle("c1")
    j.add_actions(cid2, "c1", plan, 1100.0)
    assert {a.cycle_id for a in j.unfinished()} == {cid}  # the running cycle's are in progress
    unfinished = j.recover()
    assert {a.cycle_id for a in unfinished} == {cid, cid2}
    j.resolve(unfinished[0].id, "skipped", "not started")
    assert len(j.unfinished()) == len(unfinished) - 1
    assert j.cycles(1)[0].status == "interrupted"


def test_a_cycle_s_planned_storage_moves_are_counted_on_both_databases(journal_factory):
    from balancer.engine.options import StorageOptions

    snap = SimulatedCluster(SimConfig(hosts=5, vms=50, start=230)).snapshot()  # 19:10: ds-01 at 80 %
    plan = make_plan(snap, PlanOptions(planner="greedy", max_moves=4, storage=StorageOptions(space_threshold=0.75)))
    assert plan.storage_moves
    j = journal_factory()
    cid = j.begin_cycle("c1")
    j.record_plan(cid, "c1", "recommended", plan)
    j.end_cycle(cid, "ok")
    assert j.cycles(1)[0].planned_storage == len(plan.storage_moves)


def test_datastore_space_is_kept_pruned_and_trended_alike_on_both_databases(journal_factory):
    """The datastore space per collection (thin disks' growth trend, #33): written, pruned to the window,
    read back and fitted the same on SQLite and PostgreSQL."""
    from balancer.config import SdrsConfig
    from balancer.journal import DatastoreSpace
    from balancer.journal.past import datastore_growth

    j = journal_factory()
    hour = 3600.0
    for i in range(6):  # ds0's thin disks: +1 GB an hour; a 5 GB disk moves in after the third collection
        moved = 5.0 if i >= 3 else 0.0
        j.record_datastore_space("c1", i * hour, [DatastoreSpace("ds0", 500.0 + i + moved, 100.0 + i + moved,
                                                                 "b" if i >= 3 else "a"),
                                                  DatastoreSpace("ds1", 300.0 - i, 50.0 - i, "z")], keep=4.5 * hour)
    j.close()
    j = journal_factory()
    got = j.datastore_space("c1", 0.0, 10 * hour)
    # written at 5 h, keeping 4.5 h: the 0 h collection is gone
    assert got["ds0"] == [(hour, 101.0, "a"), (2 * hour, 102.0, "a"), (3 * hour, 108.0, "b"), (4 * hour, 109.0, "b"),
                          (5 * hour, 110.0, "b")]
    sdrs = SdrsConfig(growth_window="5h", growth_min_samples=5, growth_min_span="3h")
    assert datastore_growth(j, "c1", 5 * hour, sdrs) == {"ds0": pytest.approx(24.0), "ds1": 0.0}
    assert datastore_growth(j, "c1", 5 * hour, SdrsConfig(growth_min_samples=6)) == {}


def test_migrations_bring_the_schema_up_once(pg_url):
    a = Journal(url=pg_url, password=PASSWORD)
    b = Journal(url=pg_url, password=PASSWORD)  # a second instance: nothing left to migrate
    try:
        assert a.db.one("SELECT value FROM meta WHERE key='schema'")["value"] == str(SCHEMA_VERSION)
        cid = a.begin_cycle("c1")
        assert b.cycles(1)[0].id == cid
    finally:
        a.close()
        b.close()


def test_a_wrong_password_is_one_clear_line_without_the_password(pg_url):
    from balancer.errors import InputError

    with pytest.raises(InputError) as err:
        Journal(url=pg_url, password="not-" + PASSWORD)
    text = str(err.value)
    assert "cannot connect" in text and PASSWORD not in text and "\n" not in text


def test_the_lease_has_one_holder_and_a_new_epoch_for_each(pg_url):
    j = Journal(url=pg_url, password=PASSWORD)
    try:
        a, b = Lease(j, "a", 1.0), Lease(j, "b", 1.0)
        assert a.acquire() == 1
        assert b.acquire() is None  # held
        assert a.renew() and a.live_holder() == "a"
        time.sleep(1.2)  # a stopped renewing: its lease expired
        assert a.live_holder() is None
        assert b.acquire() == 2
        assert not a.renew()  # taken over: a knows it is no longer the leader
        assert a.acquire() is None
        b.release()
        assert a.acquire() == 3  # released: taken at once
    finally:
        j.close()


def test_an_action_of_a_stale_epoch_is_refused(pg_url):
    plan = _plan()
    old = Journal(url=pg_url, password=PASSWORD)
    new = Journal(url=pg_url, password=PASSWORD)
    try:
        lease_old, lease_new = Lease(old, "old", 1.0), Lease(new, "new", 30.0)
        old.holder, new.holder = "old", "new"
        old.epoch = lease_old.acquire()
        cid = old.begin_cycle("c1")
        ids = old.add_actions(cid, "c1", plan, 1000.0)
        assert old.action_started(ids[plan.actions[0].step])  # while it holds the lease
        time.sleep(1.2)  # the old leader hangs; its lease expires and the standby takes it
        new.epoch = lease_new.acquire()
        assert new.epoch == old.epoch + 1
        assert not old.action_started(ids[plan.actions[1].step])  # fenced: its epoch is stale
        with pytest.raises(LeaseLost):
            old.add_actions(old.begin_cycle("c1"), "c1", plan, 1100.0)
        assert new.recover() and {a.epoch for a in new.unfinished()} == {old.epoch}
        cid2 = new.begin_cycle("c1")
        ids2 = new.add_actions(cid2, "c1", plan, 1200.0)
        assert new.action_started(ids2[plan.actions[0].step])
        assert {a.epoch for a in new.actions(cid2)} == {new.epoch}
        assert new.cycles(1)[0].epoch == new.epoch
    finally:
        old.close()
        new.close()


def test_run_and_history_on_postgresql_never_show_the_password(tmp_path, pg_url):
    data = sim_config(tmp_path, drs={"interval": "0.2s"})
    data["journal"] = {"url": pg_url, "password_env": PASSWORD_ENV, "path": str(tmp_path / "journal.sqlite")}
    data["service"]["failover_after"] = "2s"
    cfg = write_config(tmp_path, data)
    r = run_cli("run", "--config", str(cfg), "--cycles", "2", "--log-format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stderr + r.stdout and "leader" in r.stderr
    r = run_cli("history", "--config", str(cfg), "--format", "json", "--last", "5")
    assert r.returncode == 0, r.stderr
    import json

    cycles = json.loads(r.stdout)
    assert [c["status"] for c in cycles] == ["ok", "ok"] and cycles[0]["actions"]
    assert PASSWORD not in r.stdout + r.stderr
    assert not (tmp_path / "journal.sqlite").exists()  # the journal is in PostgreSQL


def test_a_password_in_the_url_is_refused(tmp_path, pg_url):
    data = sim_config(tmp_path)
    data["journal"] = {"url": pg_url.replace("balancer@", f"balancer:{PASSWORD}@")}
    r = run_cli("check-config", str(write_config(tmp_path, data)))
    assert r.returncode == 2 and "password_env or password_file" in r.stderr
    assert PASSWORD not in r.stderr and r.stderr.count("\n") == 1
