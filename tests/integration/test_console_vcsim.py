"""Approving a recommendation through the HTTP API against the vCenter simulator over SOAP: the vMotion
lands in vCenter, journaled with vCenter's task and the user who approved it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from balancer.journal import Journal  # noqa: E402
from balancer.web.auth import hash_password  # noqa: E402
from service_helpers import Running, config_of  # noqa: E402
from test_console_api import call, token  # noqa: E402
from vcsim_harness import VcSim, host_name, vm_name  # noqa: E402

pytestmark = pytest.mark.integration

OPERATOR = ("olga", "olga-op-password")


def _pile_up(sim: VcSim) -> None:
    """Every VM on host 0: the balancer has moves to recommend."""
    admin = sim.connect()
    try:
        for i in range(sim.vm_count):
            if i % sim.hosts:
                admin.relocate(vm_name(i), host_name(0))
    finally:
        admin.close()


def test_an_approved_vmotion_lands_in_vcenter(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096)
    _pile_up(sim)
    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [{"name": OPERATOR[0], "role": "operator",
                                                "password_hash": hash_password(OPERATOR[1])}]}), encoding="utf-8")
    data = {
        "source": "vcenter",
        "vcenter": sim.vcenter_section(timeout="5s"),
        # manual: the service only recommends; one cycle now, the next an hour later
        "drs": {"automation": "manual", "interval": "1h", "time_limit": "0.5s", "planner": "greedy",
                "migration_threshold": 4},
        "metrics": {"listen": "127.0.0.1:0"},
        "console": {"users_file": str(users)},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "service": {"shutdown_wait": "30s"},
    }
    svc = Running(config_of(data))
    try:
        cluster = svc.service.runners[0].name
        svc.wait_cycles(cluster, 1, timeout=120)
        code, body = call(svc.url, f"/api/v1/clusters/{cluster}/recommendations", OPERATOR)
        assert code == 200 and body["recommendations"], body
        rec = body["recommendations"][0]
        assert rec["kind"] == "move" and rec["source"] == host_name(0)
        admin = sim.connect()
        try:
            assert admin.placement()[rec["vm"]] == rec["source"]  # manual: nothing moved by the service
        finally:
            admin.close()

        code, out = call(svc.url, f"/api/v1/clusters/{cluster}/recommendations/{rec['id']}/approve", OPERATOR, "POST",
                         csrf=token(svc.url, OPERATOR))
        assert code == 200, out
        (result,) = out["results"]
        assert result["outcome"] == "success" and result["subject"] == rec["vm"]

        admin = sim.connect()  # vCenter's own view, from a session of its own
        try:
            assert admin.placement()[rec["vm"]] == rec["target"]
        finally:
            admin.close()
    finally:
        assert svc.stop() == 0
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        (action,) = journal.actions(out["cycle"])
        assert action.state == "success" and action.approved_by == OPERATOR[0] and action.task
        assert journal.recommendation(cluster, rec["id"]).state == "approved"
    finally:
        journal.close()
