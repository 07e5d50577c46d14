"""Fault injection against the vCenter simulator: after each fault the journal matches vCenter's task
history exactly -- every relocation task vCenter ran is journaled once with vCenter's outcome (none
lost, none duplicated, none invented), no more vMotions ran at once than max_vmotions_per_cluster,
and no VM was moved twice within its cooldown.

Faults (the launcher's, tests/vcsim/main.go): `kill -9` of the service 20 times mid-vMotion; vCenter
unreachable for a while and back (/_vcsim/outage) with a vMotion in flight; relocation tasks that
fail (/_vcsim/fail); a relocation that runs past its deadline and ignores CancelTask, then succeeds
(/_vcsim/hold, /_vcsim/release). Each test prints its figures (the FAULTS lines); they are recorded
in docs/reliability.md.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service_helpers import ServiceProcess, scrape, write_config  # noqa: E402
from vcsim_harness import VcSim, max_overlap, wait_until  # noqa: E402

pytestmark = pytest.mark.integration

PER_CLUSTER = 2


def _config(sim: VcSim, tmp_path: Path, vcenter: dict | None = None, **drs) -> dict:
    return {
        "source": "vcenter",
        "vcenter": sim.vcenter_section(**{"timeout": "5s", **(vcenter or {})}),
        "drs": {"automation": "full", "interval": "1s", "time_limit": "0.5s", "planner": "greedy",
                "migration_threshold": 4, "cooldown": "1h", "max_vmotions_per_cluster": PER_CLUSTER,
                "max_vmotions_per_host": PER_CLUSTER, **drs},
        "metrics": {"listen": "127.0.0.1:0"},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "service": {"shutdown_wait": "60s"},
    }


def _pile_up(sim: VcSim) -> None:
    """Every VM on host 0: the balancer has many moves to make."""
    admin = sim.connect()
    try:
        for i in range(sim.vm_count):
            if i % sim.hosts:
                admin.relocate(sim.vm_name(i), sim.host_name(0))
    finally:
        admin.close()
    sim.reset()


def _rows(tmp_path: Path, sql: str = "SELECT * FROM actions WHERE kind='move' ORDER BY id") -> list[dict]:
    if not (tmp_path / "journal.sqlite").exists():
        return []
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql).fetchall()]
    except sqlite3.OperationalError:  # the service has not created its tables yet
        return []
    finally:
        db.close()


def _tasks_ended(sim: VcSim) -> bool:
    """Every RelocateVM_Task vCenter accepted has ended (is in its relocation log)."""
    st = sim.stats()
    return len(st["relocations"]) == st["methods"].get("RelocateVM_Task", 0)


def _settle(cfg: Path, tmp_path: Path, sim: VcSim) -> None:
    """Once vCenter's tasks have all ended, one more service run settles what the journal left open."""
    assert wait_until(lambda: _tasks_ended(sim), timeout=60)
    if any(r["state"] in ("pending", "started") for r in _rows(tmp_path)):
        svc = ServiceProcess(cfg, "--cycles", "1", cwd=tmp_path)
        try:
            assert svc.finish(120) == 0, "".join(svc.raw[-30:])
        finally:
            svc.kill()


def check_journal_matches_vcenter(sim: VcSim, tmp_path: Path, per_cluster: int = PER_CLUSTER) -> dict[str, int]:
    """The journal's moves against vCenter's relocation log; the figures."""
    log = sim.stats()["relocations"]
    rows = _rows(tmp_path)
    by_task = {r["task"]: r for r in log}
    assert len(by_task) == len(log) and all(log_task for log_task in by_task), "a vCenter task logged twice or without id"
    assert not [r for r in rows if r["state"] in ("pending", "started")], "an action left open"
    journaled = [r["task"] for r in rows if r["task"]]
    assert len(journaled) == len(set(journaled)), "a task journaled twice"
    # a task whose id the journal could not write before a kill: its action was settled from the VM's place
    unmatched = [t for t in by_task if t not in set(journaled)]
    no_id = [r for r in rows if not r["task"] and r["state"] in ("success", "failed", "cancelled")]
    for r in no_id:
        assert r["recovered"], f"an outcome without a task: {r}"
        match = next(t for t in unmatched if (by_task[t]["vm"], by_task[t]["source"], by_task[t]["target"])
                     == (r["subject"], r["source"], r["target"]))
        unmatched.remove(match)
        journaled.append(match)
        r["task"] = match
    assert not unmatched, f"vCenter ran tasks the journal does not know: {unmatched}"
    assert set(journaled) <= set(by_task), "the journal names a task vCenter never ran"
    for r in rows:
        if not r["task"]:
            continue
        t = by_task[r["task"]]
        expected = "cancelled" if t.get("cancelled") else "failed" if t["failed"] else "success"
        assert r["state"] == expected, (r, t)
        assert (r["subject"], r["source"], r["target"]) == (t["vm"], t["source"], t["target"])
    overlap = max_overlap([(t["start_ns"], t["end_ns"]) for t in log]) if log else 0
    assert overlap <= per_cluster, f"{overlap} vMotions at once (limit {per_cluster})"
    moved = Counter(t["vm"] for t in log if not t["failed"])
    assert not moved or max(moved.values()) == 1, f"a VM moved twice within its cooldown: {moved.most_common(3)}"
    states = Counter(r["state"] for r in rows)
    return {"tasks": len(log), "success": states["success"], "failed": states["failed"],
            "cancelled": states["cancelled"], "skipped": states["skipped"],
            "recovered": sum(1 for r in rows if r["recovered"]), "max_concurrent": overlap}


def _figures(case: str, **figures: int) -> None:
    print(f"FAULTS {case}: " + " ".join(f"{k}={v}" for k, v in figures.items()))


def test_kill_9_twenty_times_mid_vmotion(start_vcsim, tmp_path):
    # 96 VMs piled on one small host: far more repairs to make than 20 runs of the service
    # can start before each is killed, however many a loaded machine lets a run start
    sim = start_vcsim(hosts=6, vms_per_host=16, cpu_mhz=1000, cores=2, mem_mb=4096, relocate_task_ms=1000)
    _pile_up(sim)
    cfg = write_config(tmp_path, _config(sim, tmp_path, migration_threshold=5))
    kills = runs = 0
    while kills < 20 and runs < 40:  # a run that starts no vMotion in time is stopped and not counted
        runs += 1
        known = {r["task"] for r in _rows(tmp_path) if r["task"]}
        svc = ServiceProcess(cfg, cwd=tmp_path)
        try:
            # a vMotion this run started, its task running in vCenter (it runs 1 s): kill now
            if not wait_until(lambda: any(r["task"] and r["task"] not in known and r["state"] == "started"
                                          for r in _rows(tmp_path)), timeout=30):
                continue
            svc.proc.send_signal(signal.SIGKILL)
            svc.proc.wait(10)
            kills += 1
        finally:
            svc.kill()
    _settle(cfg, tmp_path, sim)
    figures = check_journal_matches_vcenter(sim, tmp_path)
    _figures("kill-9", kills=kills, **figures)
    assert kills == 20 and figures["recovered"] >= 20


def test_vcenter_unreachable_mid_vmotion_and_back(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096, relocate_task_ms=3000)
    _pile_up(sim)
    cfg = write_config(tmp_path, _config(sim, tmp_path, max_vmotions_per_cluster=1))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    health: list[str] = []
    try:
        url = svc.wait_for(lambda e: e.get("event") == "service start")["metrics"].removesuffix("/metrics")
        assert wait_until(lambda: any(r["task"] and r["state"] == "started" for r in _rows(tmp_path)), timeout=60), \
            "".join(svc.raw[-30:])
        (moving,) = [r for r in _rows(tmp_path) if r["state"] == "started"]
        sim.outage(6000)  # vCenter unreachable for 6 s while its task runs on

        def degraded() -> bool:
            health.append(json.loads(scrape(url, "/healthz")[1])["status"])
            return health[-1] == "degraded"

        assert wait_until(degraded, timeout=30), health
        # the move in flight ends as vCenter's task did, once vCenter answers again
        assert wait_until(lambda: _rows(tmp_path, f"SELECT state FROM actions WHERE id={moving['id']}")[0]["state"]
                          != "started", timeout=60)
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.finish(120) == 0, "".join(svc.raw[-30:])
    finally:
        svc.kill()
    _settle(cfg, tmp_path, sim)
    assert _rows(tmp_path, f"SELECT state FROM actions WHERE id={moving['id']}")[0]["state"] == "success"
    figures = check_journal_matches_vcenter(sim, tmp_path, per_cluster=1)
    _figures("vcenter-down-and-back", outage_s=6, health_degraded=int("degraded" in health), **figures)
    assert figures["failed"] == 0


def test_relocation_tasks_that_fail(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096, relocate_task_ms=300)
    _pile_up(sim)
    for i in range(sim.vm_count):  # every VM's next relocation ends in a task error
        sim.fail_relocate(sim.vm_name(i))
    cfg = write_config(tmp_path, _config(sim, tmp_path))
    svc = ServiceProcess(cfg, "--cycles", "4", cwd=tmp_path)
    try:
        assert svc.finish(180) in (0, 1), "".join(svc.raw[-30:])
    finally:
        svc.kill()
    _settle(cfg, tmp_path, sim)
    figures = check_journal_matches_vcenter(sim, tmp_path)
    _figures("failing-tasks", **figures)
    assert figures["failed"] >= 3 and figures["success"] >= 1
    messages = [r["message"] for r in _rows(tmp_path) if r["state"] == "failed"]
    assert all("InsufficientResourcesFault" in m for m in messages), messages


def test_a_hung_vmotion_ignoring_cancel_is_journaled_as_it_ends(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096, relocate_task_ms=300)
    _pile_up(sim)
    sim.hold()  # every relocation task runs until released; CancelTask is not honoured
    # a deadline of a few seconds: max(vcenter.timeout, 3 x predicted + deadline_margin)
    cfg = write_config(tmp_path, _config(sim, tmp_path, vcenter={"timeout": "2s", "deadline_margin": "0s"},
                                         interval="0.5s", max_vmotions_per_cluster=1))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        assert wait_until(lambda: any(r["cancel_requested_at"] for r in _rows(tmp_path)), timeout=60), \
            "".join(svc.raw[-30:])
        (hung,) = [r for r in _rows(tmp_path) if r["cancel_requested_at"]]
        assert hung["state"] == "started" and "cancel requested" in hung["message"]
        # cycles come due meanwhile and are skipped: the hung vMotion holds the cluster's only slot
        svc.wait_for(lambda e: sum(1 for x in svc.events if x.get("event", "").startswith("cycle skipped")) >= 5,
                     timeout=60)
        st = sim.stats()["methods"]
        started_while_hung = st.get("RelocateVM_Task", 0) - 1
        cancels = st.get("CancelTask", 0)
        sim.release()  # vCenter finishes it after all
        assert wait_until(lambda: _rows(tmp_path, f"SELECT state FROM actions WHERE id={hung['id']}")[0]["state"]
                          != "started", timeout=60)
        svc.proc.send_signal(signal.SIGTERM)
        code = svc.finish(120)
    finally:
        sim.release()
        svc.kill()
    assert code == 0, "".join(svc.raw[-30:])
    assert started_while_hung == 0 and cancels == 1
    (row,) = _rows(tmp_path, f"SELECT * FROM actions WHERE id={hung['id']}")
    assert row["state"] == "success" and "did not honour the cancel" in row["message"]
    _settle(cfg, tmp_path, sim)
    figures = check_journal_matches_vcenter(sim, tmp_path, per_cluster=1)
    _figures("hung-task-ignoring-cancel", cancel_requests=cancels, started_while_hung=started_while_hung, **figures)
