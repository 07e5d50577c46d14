"""The command line end to end against the vCenter simulator: snapshot, recommend, apply."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from balancer.snapshot import load_snapshot
from vcsim_harness import CLUSTER, PASSWORD, PASSWORD_ENV, ROOT, host_name, vm_name

pytestmark = pytest.mark.integration


def balancer(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **{PASSWORD_ENV: PASSWORD})
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "balancer", *args], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=120)


def write_config(sim, path, **vcenter) -> str:
    cfg = {"source": "vcenter", "vcenter": sim.vcenter_section(**vcenter),
           "drs": {"time_limit": "2s", "max_vmotions_per_host": 2, "max_vmotions_per_cluster": 4},
           "journal": {"path": str(path.parent / "journal.sqlite")}}  # apply journals its moves
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_snapshot_reproduces_inventory_and_rules(vcsim, admin, tmp_path):
    from pyVmomi import vim

    vms, hosts = admin.vms(), admin.hosts()
    add = vim.option.ArrayUpdateSpec.Operation.add
    admin.reconfigure(vim.cluster.ConfigSpecEx(
        groupSpec=[
            vim.cluster.GroupSpec(operation=add, info=vim.cluster.VmGroup(name="db", vm=[vms[vm_name(1)]])),
            vim.cluster.GroupSpec(operation=add, info=vim.cluster.HostGroup(name="fast", host=[hosts[host_name(1)]])),
        ],
        rulesSpec=[
            vim.cluster.RuleSpec(operation=add, info=vim.cluster.AntiAffinityRuleSpec(
                name="apart", enabled=True, vm=[vms[vm_name(0)], vms[vm_name(4)]])),
            vim.cluster.RuleSpec(operation=add, info=vim.cluster.VmHostRuleInfo(
                name="db-fast", enabled=True, mandatory=False, vmGroupName="db", affineHostGroupName="fast")),
        ],
    ))
    config = write_config(vcsim, tmp_path / "vc.yaml")
    out = tmp_path / "s.json"
    proc = balancer("snapshot", "--config", config, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "12 VMs" in proc.stderr and "2 rules" in proc.stderr

    snap = load_snapshot(out)
    data = json.loads(out.read_text())
    assert data["source"] == "vcenter" and data["cluster"] == CLUSTER
    assert sorted(h.name for h in snap.hosts) == [host_name(i) for i in range(4)]
    assert {v.name: v.host for v in snap.vms} == admin.placement()
    assert snap.vm_groups == {"db": [vm_name(1)]} and snap.host_groups == {"fast": [host_name(1)]}
    assert sorted((r.name, r.type) for r in snap.rules) == [("apart", "vm-anti-affinity"), ("db-fast", "vm-host")]


def test_cli_recommend_then_apply_lands_the_plan(start_vcsim, tmp_path):
    # Small hosts, and every VM piled onto host 0: the balancer has work to do.
    sim = start_vcsim(hosts=3, vms_per_host=3, cpu_mhz=1000, cores=2, mem_mb=4096)
    admin = sim.connect()
    try:
        for i in range(9):
            if i % 3:
                admin.relocate(vm_name(i), host_name(0))
        config = write_config(sim, tmp_path / "vc.yaml")
        # The simulator's performance samples are canned numbers with noise: the plan keeps every
        # host at half its CPU, and apply (which re-checks capacity on a fresh, noisy sample) may
        # fill hosts to the brim, so the noise cannot make it refuse the plan.
        cfg = yaml.safe_load(open(config))
        cfg["drs"]["cpu_headroom"] = 0.5
        open(config, "w").write(yaml.safe_dump(cfg))
        apply_config = tmp_path / "apply.yaml"
        cfg["drs"]["cpu_headroom"] = 0.0
        apply_config.write_text(yaml.safe_dump(cfg))
        plan_path = tmp_path / "plan.json"
        proc = balancer("recommend", "--config", config, "--format", "json", "--out", str(plan_path))
        assert proc.returncode == 0, proc.stderr
        plan = json.loads(plan_path.read_text())
        assert plan["cluster"] == CLUSTER and plan["moves"], plan

        proc = balancer("apply", str(plan_path), "--config", str(apply_config), "--format", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = json.loads(proc.stdout)
        assert len(results) == len(plan["moves"]) + len(plan.get("power", []))
        assert all(r["outcome"] == "success" for r in results)
        placement = admin.placement()
        for m in plan["moves"]:
            assert placement[m["vm"]] == m["target"]

        # The same plan again: every move is already made, which is not a failure.
        proc = balancer("apply", str(plan_path), "--config", str(apply_config), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        again = json.loads(proc.stdout)
        assert again and all(r["outcome"] == "skipped" and "already on" in r["message"]
                             for r in again if r["kind"] == "move")
        assert "Traceback" not in proc.stderr
    finally:
        admin.close()


def _without_http_warning(stderr: str) -> str:
    """Standard error less the warning every command gives for protocol http (the simulator speaks http)."""
    lines = stderr.splitlines(keepends=True)
    assert lines and lines[0].startswith("warning: ") and "protocol http" in lines[0], stderr
    return "".join(lines[1:])


def test_cli_bad_credentials_and_unreachable_vcenter_are_one_line(vcsim, tmp_path):
    wrong = "not-the-real-one-42"
    config = write_config(vcsim, tmp_path / "vc.yaml", password_env="VCSIM_CLI_WRONG")
    proc = balancer("snapshot", "--config", config, "--out", str(tmp_path / "s.json"), env={"VCSIM_CLI_WRONG": wrong})
    assert proc.returncode == 1
    proc.stderr = _without_http_warning(proc.stderr)
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "login failed" in proc.stderr and wrong not in proc.stderr + proc.stdout

    config = write_config(vcsim, tmp_path / "vc2.yaml", password_env="VCSIM_CLI_UNSET")
    proc = balancer("snapshot", "--config", config, "--out", str(tmp_path / "s.json"), env={"VCSIM_CLI_UNSET": ""})
    proc.stderr = _without_http_warning(proc.stderr)
    assert proc.returncode == 1 and "VCSIM_CLI_UNSET" in proc.stderr and proc.stderr.count("\n") == 1

    vcsim.stop()
    config = write_config(vcsim, tmp_path / "vc3.yaml")
    proc = balancer("snapshot", "--config", config, "--out", str(tmp_path / "s.json"))
    assert proc.returncode == 1
    proc.stderr = _without_http_warning(proc.stderr)
    assert "cannot connect" in proc.stderr and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
