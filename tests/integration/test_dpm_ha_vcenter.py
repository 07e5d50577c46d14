"""HA admission control read from vCenter's configurationEx.dasConfig, kept by DPM; and a whole
consolidation (`recommend --all-steps`) carried out by `apply` on the simulator."""

from __future__ import annotations

import json

import pytest

from balancer.snapshot import HostState
from test_vcenter_cli import balancer as run_balancer
from test_vcenter_cli import write_config
from vcsim_harness import host_name

pytestmark = pytest.mark.integration


def _das(policy, enabled=True, admission=True):
    from pyVmomi import vim

    return vim.cluster.ConfigSpecEx(dasConfig=vim.cluster.DasConfigInfo(
        enabled=enabled, admissionControlEnabled=admission, admissionControlPolicy=policy))


def test_ha_admission_control_is_read_from_das_config(vcsim, admin):
    from pyVmomi import vim

    with vcsim.source() as src:
        assert src.snapshot().ha is None  # the simulator's cluster has HA off
    cases = [
        (vim.cluster.FailoverLevelAdmissionControlPolicy(failoverLevel=2), ("host-failures", 2)),
        (vim.cluster.FailoverResourcesAdmissionControlPolicy(cpuFailoverResourcesPercent=30,
                                                              memoryFailoverResourcesPercent=25,
                                                              autoComputePercentages=False),
         ("percentage", (30.0, 25.0))),
        (vim.cluster.FailoverResourcesAdmissionControlPolicy(cpuFailoverResourcesPercent=25,
                                                              memoryFailoverResourcesPercent=25,
                                                              failoverLevel=1, autoComputePercentages=True),
         ("host-failures", 1)),
        (vim.cluster.FailoverHostAdmissionControlPolicy(failoverHosts=[admin.hosts()[host_name(3)]]),
         ("failover-hosts", [host_name(3)])),
    ]
    for policy, (kind, value) in cases:
        admin.reconfigure(_das(policy))
        with vcsim.source() as src:
            ha = src.snapshot().ha
        assert ha is not None and ha.policy == kind
        got = {"host-failures": lambda: ha.host_failures, "percentage": lambda: (ha.cpu_percent, ha.mem_percent),
               "failover-hosts": lambda: ha.failover_hosts}[kind]()
        assert got == value
    admin.reconfigure(_das(vim.cluster.FailoverLevelAdmissionControlPolicy(failoverLevel=1), admission=False))
    with vcsim.source() as src:
        assert src.snapshot().ha is None  # admission control off: nothing to keep


def test_all_steps_plan_keeps_the_failover_host_and_apply_carries_it_out(start_vcsim, tmp_path):
    from pyVmomi import vim

    sim = start_vcsim(hosts=6, vms_per_host=2)
    admin = sim.connect()
    try:
        failover = host_name(0)
        admin.reconfigure(_das(vim.cluster.FailoverHostAdmissionControlPolicy(failoverHosts=[admin.hosts()[failover]])))
        config = write_config(sim, tmp_path / "vc.yaml")

        # the service's pace: half of the 4 hosts that could go, per plan; the end state says how far it goes
        one = tmp_path / "one.json"
        proc = run_balancer("recommend", "--config", config, "--dpm", "--format", "json", "--out", str(one))
        assert proc.returncode == 0, proc.stderr
        paced = json.loads(one.read_text())
        assert len([p for p in paced["power"] if p["action"] == "standby"]) == 2
        end = paced["dpm_end_state"]
        assert end["hosts_now"] == 6 and end["hosts_on"] == 2  # min_hosts_on 2, the failover host one of them
        assert failover not in end["standby_now"] + end["standby_later"]
        assert len(end["standby_now"]) == 2 and len(end["standby_later"]) == 2
        assert end["ha"] == f"HA admission control: failover host {failover}"

        plan_file = tmp_path / "all.json"
        proc = run_balancer("recommend", "--config", config, "--all-steps", "--format", "json", "--out", str(plan_file))
        assert proc.returncode == 0, proc.stderr
        plan = json.loads(plan_file.read_text())
        standby = [p["host"] for p in plan["power"] if p["action"] == "standby"]
        # as many hosts as the paced plan's end state names (which ones may differ: DPM ranks the hosts by their
        # VMs' CPU demand, read afresh for this plan), never the failover host
        assert len(standby) == len(end["standby_now"] + end["standby_later"]) and failover not in standby
        assert plan["dpm_end_state"]["hosts_on"] == 2 and plan["dpm_end_state"]["standby_later"] == []

        proc = run_balancer("apply", str(plan_file), "--config", config, "--format", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = json.loads(proc.stdout)
        assert results and all(r["outcome"] == "success" for r in results)
        for h in standby:
            assert admin.host_power_state(h) == "standBy"
        assert admin.host_power_state(failover) == "poweredOn"
        with sim.source() as src:
            fresh = src.snapshot()
        assert sum(1 for h in fresh.hosts if h.state is HostState.ON) == 2
        assert not set(admin.placement().values()) & set(standby)
    finally:
        admin.close()
