"""The service against the vCenter simulator over SOAP: it survives the simulator going away and coming
back, and after kill -9 a restart repeats no completed vMotion and settles the unfinished ones --
those vCenter is still carrying out once it has finished them."""

from __future__ import annotations

import signal
import sqlite3
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service_helpers import Running, ServiceProcess, config_of, scrape, value, write_config  # noqa: E402
from vcsim_harness import CLUSTER, VcSim, host_name, vm_name  # noqa: E402

pytestmark = pytest.mark.integration


def _config(sim: VcSim, tmp_path: Path, **drs) -> dict:
    return {
        "source": "vcenter",
        "vcenter": sim.vcenter_section(timeout="5s"),
        "drs": {"automation": "full", "interval": "0.5s", "time_limit": "0.5s", "planner": "greedy",
                "migration_threshold": 4, **drs},
        "metrics": {"listen": "127.0.0.1:0"},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "service": {"shutdown_wait": "30s"},
    }


def _pile_up(sim: VcSim) -> None:
    """Every VM on host 0: the balancer has moves to make."""
    admin = sim.connect()
    try:
        for i in range(sim.vm_count):
            if i % sim.hosts:
                admin.relocate(vm_name(i), host_name(0))
    finally:
        admin.close()


def _until(pred, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_service_survives_the_simulator_going_away_and_coming_back(start_vcsim, tmp_path, caplog):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096)
    _pile_up(sim)
    svc = Running(config_of(_config(sim, tmp_path)))
    try:
        svc.wait_cycles(CLUSTER, 1)
        assert _until(lambda: scrape(svc.url, "/healthz")[0] == 200)
        port = sim.port
        sim.stop()  # vCenter goes away
        done = svc.service.cycles_done(CLUSTER)
        svc.wait_cycles(CLUSTER, done + 2)
        # degraded, not dead: 200 (no liveness restart for vCenter being down), 503 under ?strict
        assert _until(lambda: json.loads(scrape(svc.url, "/healthz")[1])["status"] == "degraded")
        assert scrape(svc.url, "/healthz")[0] == 200 and scrape(svc.url, "/healthz?strict")[0] == 503
        _, text = scrape(svc.url)
        assert value(text, "balancer_cycle_errors_total", cluster=CLUSTER, phase="collect") >= 1
        back = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096, port=port)
        assert back.port == port
        assert _until(lambda: scrape(svc.url, "/healthz")[0] == 200), "the service did not recover"
        _, text = scrape(svc.url)
        assert value(text, "balancer_cycle_errors_total", cluster=CLUSTER, phase="collect") >= 1
    finally:
        assert svc.stop() == 0
    failures = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "cycle failed"]
    assert failures and all(f["phase"] == "collect" and f["error"].startswith("vcenter 127.0.0.1") for f in failures)
    # refused while connecting, or while collecting when vCenter went away in the middle of it
    assert any("connection refused" in f["error"] for f in failures), failures


def _journal(tmp_path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_kill_9_then_restart_against_the_simulator(start_vcsim, tmp_path):
    # every vMotion's task runs 600 ms in vCenter (the call itself returns at once, as vCenter's does)
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096, relocate_task_ms=600)
    _pile_up(sim)
    sim.reset()
    sim.hold(after=1)  # the first vMotion ends; the second's task runs in vCenter until released
    cfg = write_config(tmp_path, _config(sim, tmp_path, interval="1s", max_vmotions_per_host=1,
                                         max_vmotions_per_cluster=1))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        svc.wait_for(lambda e: e.get("event") == "action" and e.get("outcome") == "success", timeout=120)
        # the next vMotion has reached vCenter, its task running there: kill the balancer now
        assert _until(lambda: sim.stats()["methods"].get("RelocateVM_Task", 0) == 2, timeout=60), \
            "".join(svc.raw[-30:])
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
    finally:
        svc.kill()
    before = _journal(tmp_path, "SELECT id, subject, source, target, state FROM actions ORDER BY id")
    done_before = {(s, a, b) for _, s, a, b, st in before if st == "success"}
    unfinished = [r for r in before if r[4] in ("pending", "started")]
    assert done_before and unfinished
    (moving,) = [r for r in unfinished if r[4] == "started"]
    words = f"move {moving[1]} {moving[2]} -> {moving[3]}"

    # restarted while vCenter still runs that vMotion: it stays in flight; once vCenter has finished
    # it, the running service settles it
    again = ServiceProcess(cfg, cwd=tmp_path)
    try:
        verdict = again.wait_for(lambda e: e.get("action") == words and (
            e.get("event") == "unfinished action settled" or e.get("event", "").startswith("unfinished action still")))
        assert verdict["event"].startswith("unfinished action still in flight"), (verdict["event"], verdict.get("why"))
        sim.release()
        again.wait_for(lambda e: len([x for x in again.events if x.get("event") == "unfinished action settled"])
                       == len(unfinished), timeout=120)
        again.proc.send_signal(signal.SIGTERM)
        assert again.finish(120) == 0, "".join(again.raw[-30:])
    finally:
        again.kill()
    settled = [e for e in again.events if e.get("event") == "unfinished action settled"]
    assert len(settled) == len(unfinished)
    # the vMotion in flight at the kill went on in vCenter: the restarted service finds it done
    assert [e["was"] for e in settled if e["outcome"] == "success"] == ["started"], [(e["was"], e["outcome"], e["why"]) for e in settled]
    assert not [e for e in settled if e["outcome"] == "interrupted"]
    # what the journal says was done is what vCenter did, for the settled ones too
    relocated = {(r["vm"], r["source"], r["target"]) for r in sim.stats()["relocations"] if not r["failed"]}
    after = _journal(tmp_path, "SELECT id, subject, source, target, state, recovered FROM actions ORDER BY id")
    assert not [r for r in after if r[4] in ("pending", "started")]
    for _, vm, source, target, state, recovered in after:
        if recovered and state == "success":
            assert (vm, source, target) in relocated
    new_done = [(s, a, b) for i, s, a, b, st, _ in after if i > before[-1][0] and st == "success"]
    assert not set(new_done) & done_before, "a completed vMotion was carried out again"


def test_a_vmotion_still_running_at_restart_is_left_in_flight_until_vcenter_finishes_it(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096)
    _pile_up(sim)
    sim.reset()
    sim.hold()  # every vMotion's task stays running in vCenter, the VM on its source, until released
    cfg = write_config(tmp_path, _config(sim, tmp_path, interval="1s", max_vmotions_per_host=1,
                                         max_vmotions_per_cluster=1))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        assert _until(lambda: sim.stats()["methods"].get("RelocateVM_Task", 0) == 1, timeout=120)
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
    finally:
        svc.kill()
    before = _journal(tmp_path, "SELECT id, subject, source, target, state FROM actions ORDER BY id")
    (moving,) = [r for r in before if r[4] == "started"]
    admin = sim.connect()
    try:
        assert admin.placement()[moving[1]] == moving[2]  # still on its source, vCenter's task running
    finally:
        admin.close()

    # a restart while vCenter still carries it out: not interrupted, nothing else carried out meanwhile
    words = f"move {moving[1]} {moving[2]} -> {moving[3]}"
    first = ServiceProcess(cfg, "--cycles", "1", cwd=tmp_path)
    try:
        verdict = first.wait_for(lambda e: e.get("action") == words and (
            e.get("event") == "unfinished action settled" or e.get("event", "").startswith("unfinished action still")))
        assert verdict["event"].startswith("unfinished action still in flight"), (verdict["event"], verdict.get("why"))
        assert verdict["task"] == "RelocateVM_Task"
        assert first.finish(120) == 0, "".join(first.raw[-30:])
    finally:
        first.kill()
    settled = {e["action"]: e["outcome"] for e in first.events if e.get("event") == "unfinished action settled"}
    assert len(settled) == len(before) - 1 and set(settled.values()) == {"skipped"}  # the pending ones
    assert _journal(tmp_path, f"SELECT state FROM actions WHERE id={moving[0]}") == [("started",)]
    assert sim.stats()["methods"].get("RelocateVM_Task", 0) == 1, "a vMotion started while one was in flight"
    ((note,),) = _journal(tmp_path, "SELECT note FROM cycles ORDER BY id DESC LIMIT 1")
    assert "still in flight" in note

    # vCenter finishes it: the next start finds it done
    sim.release()
    assert _until(lambda: any(r["vm"] == moving[1] for r in sim.stats()["relocations"]), timeout=60)
    second = ServiceProcess(cfg, "--cycles", "1", cwd=tmp_path)
    try:
        assert second.finish(120) == 0, "".join(second.raw[-30:])
    finally:
        second.kill()
    (done,) = [e for e in second.events if e.get("event") == "unfinished action settled"]
    assert (done["was"], done["outcome"]) == ("started", "success"), done
    assert _journal(tmp_path, f"SELECT state, recovered FROM actions WHERE id={moving[0]}") == [("success", 1)]


def test_a_vmotion_that_fails_in_vcenter_while_the_balancer_is_down_is_journaled_as_failed(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096)
    _pile_up(sim)
    sim.reset()
    sim.hold()
    cfg = write_config(tmp_path, _config(sim, tmp_path, interval="1s", max_vmotions_per_host=1,
                                         max_vmotions_per_cluster=1))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        assert _until(lambda: sim.stats()["methods"].get("RelocateVM_Task", 0) == 1, timeout=120)
        # the task's id is journaled once vCenter has accepted it
        assert _until(lambda: _journal(tmp_path, "SELECT task FROM actions WHERE state='started' AND task IS NOT NULL"),
                      timeout=30), "".join(svc.raw[-30:])
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
    finally:
        svc.kill()
    ((aid, vm, source, task),) = _journal(tmp_path, "SELECT id, subject, source, task FROM actions WHERE state='started'")
    sim.release(fail=True)  # vCenter ends the vMotion in an error while no balancer is running
    assert _until(lambda: any(r["vm"] == vm and r["failed"] for r in sim.stats()["relocations"]), timeout=60)
    admin = sim.connect()
    try:
        assert admin.placement()[vm] == source  # vCenter did not move it
    finally:
        admin.close()

    again = ServiceProcess(cfg, "--cycles", "1", cwd=tmp_path)
    try:
        assert again.finish(120) == 0, "".join(again.raw[-30:])
    finally:
        again.kill()
    (verdict,) = [e for e in again.events if e.get("event") == "unfinished action settled" and e.get("was") == "started"]
    assert verdict["outcome"] == "failed"
    assert verdict["why"] == "RelocateVM_Task failed after the balancer stopped: InsufficientResourcesFault"
    assert _journal(tmp_path, f"SELECT state, message, task, recovered FROM actions WHERE id={aid}") == [
        ("failed", verdict["why"], task, 1)]
