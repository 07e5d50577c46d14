"""The service against the vCenter simulator over SOAP: it survives the simulator going away and coming
back, and after kill -9 a restart repeats no completed vMotion and settles the unfinished ones."""

from __future__ import annotations

import signal
import sqlite3
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
        assert _until(lambda: scrape(svc.url, "/healthz")[0] == 503)
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


def test_kill_9_then_restart_against_the_simulator(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096, relocate_ms=600)
    _pile_up(sim)
    cfg = write_config(tmp_path, _config(sim, tmp_path, interval="1s", max_vmotions_per_host=1,
                                         max_vmotions_per_cluster=1))
    svc = ServiceProcess(cfg, cwd=tmp_path)
    try:
        svc.wait_for(lambda e: e.get("event") == "action" and e.get("outcome") == "success", timeout=120)
        sent = sim.stats()["methods"].get("RelocateVM_Task", 0)
        # the next vMotion has reached vCenter (each takes 600 ms there): kill the balancer now
        assert _until(lambda: sim.stats()["methods"].get("RelocateVM_Task", 0) > sent, timeout=60)
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
    finally:
        svc.kill()
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    before = db.execute("SELECT id, subject, source, target, state FROM actions ORDER BY id").fetchall()
    db.close()
    done_before = {(s, a, b) for _, s, a, b, st in before if st == "success"}
    unfinished = [r for r in before if r[4] in ("pending", "started")]
    assert done_before and unfinished

    again = ServiceProcess(cfg, "--cycles", "1", cwd=tmp_path)
    try:
        assert again.finish(120) == 0, "".join(again.raw[-30:])
    finally:
        again.kill()
    settled = [e for e in again.events if e.get("event") == "unfinished action settled"]
    assert len(settled) == len(unfinished)
    # the vMotion in flight at the kill went on in vCenter: the restart finds it done
    assert [e["was"] for e in settled if e["outcome"] == "success"] == ["started"], [(e["was"], e["outcome"], e["why"]) for e in settled]
    admin = sim.connect()
    try:
        placement = admin.placement()
    finally:
        admin.close()
    # what the journal says was done is what vCenter shows, for the settled ones too
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    after = db.execute("SELECT id, subject, source, target, state, recovered FROM actions ORDER BY id").fetchall()
    db.close()
    assert not [r for r in after if r[4] in ("pending", "started")]
    for _, vm, _, target, state, recovered in after:
        if recovered and state == "success":
            assert placement[vm] == target
    new_done = [(s, a, b) for i, s, a, b, st, _ in after if i > before[-1][0] and st == "success"]
    assert not set(new_done) & done_before, "a completed vMotion was carried out again"
