"""Balancing domains against the vCenter simulator: a move to another cluster of one vCenter, and to
another vCenter (two simulators) with a service locator, through the commands of docs/domains.md."""

from __future__ import annotations

import json
import sqlite3
import os
import subprocess
import sys

import pytest
import yaml

from vcsim_harness import PASSWORD, PASSWORD_ENV

pytestmark = pytest.mark.integration


def balancer(*args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{PASSWORD_ENV: PASSWORD})
    return subprocess.run([sys.executable, "-m", "balancer", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=180)


def write_config(path, clusters: list[tuple[str, dict]], **domain) -> str:
    cfg = {"drs": {"time_limit": "2s"},
           "journal": {"path": str(path.parent / "journal.sqlite")},
           "clusters": [{"name": n, "source": "vcenter", "vcenter": vc} for n, vc in clusters],
           "domains": [{"name": "pair", "clusters": [n for n, _ in clusters], "cross_cluster": "full", **domain}]}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_a_vm_moves_to_another_vcenter_through_recommend_and_apply(start_vcsim, tmp_path):
    # A: 2 hosts of 1,000 MHz with 8 busy VMs (about 95 % of its CPU); B: 2 hosts of 16,000 MHz, 2 VMs.
    a = start_vcsim(hosts=2, vms_per_host=4, cpu_mhz=500, cores=2, name_prefix="A_", disk_gb=2, evc="intel-broadwell")
    b = start_vcsim(hosts=2, vms_per_host=1, name_prefix="B_", datastores=2, datastore_gb=1000, datastore_free_gb=900,
                    evc="intel-broadwell", host_evc="intel-cascadelake")
    config = write_config(tmp_path / "c.yaml", [("a", a.vcenter_section()), ("b", b.vcenter_section())],
                          high=0.8, room=0.5)
    r = balancer("recommend", "--config", config, "--domain", "pair", "--format", "json", "--out", "p.json",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    plan = json.loads((tmp_path / "p.json").read_text())
    assert [c["over"] for c in plan["clusters"]] == [True, False], plan
    (m,) = plan["moves"]
    assert (m["source_cluster"], m["target_cluster"], m["cross_vcenter"]) == ("a", "b", True)
    assert m["datastore"] in ("LocalDS_0", "LocalDS_1") and m["storage_copy"]["data_gb"] == pytest.approx(2, abs=0.1)
    assert PASSWORD not in (tmp_path / "p.json").read_text()

    r = balancer("apply", "p.json", "--config", config, "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [x["outcome"] for x in json.loads(r.stdout)] == ["success"]
    assert PASSWORD not in r.stdout  # the results name no credential

    a_admin, b_admin = a.connect(), b.connect()
    assert m["vm"] not in a_admin.vms()
    assert b_admin.placement()[m["vm"]] == m["target"]
    assert b_admin.props(b_admin.vms()[m["vm"]], "runtime.powerState")["runtime.powerState"] == "poweredOn"
    assert set(b_admin.disks()[m["vm"]].values()) == {m["datastore"]}
    log = a.stats()["relocations"][-1]
    assert (log["vm"], log["target"], log["failed"]) == (m["vm"], m["target"], False)
    assert log["target_vcenter"].startswith(f"http://{b.host}:{b.port}")


def test_a_vm_moves_to_another_cluster_of_the_same_vcenter(start_vcsim, tmp_path):
    sim = start_vcsim(hosts=2, vms_per_host=4, cpu_mhz=500, cores=2, clusters=2, evc="intel-broadwell")
    admin = sim.connect()
    for i in range(8):  # DC0_C1's VMs powered off: it has room
        admin.wait(admin.vms()[sim.vm_name(i, cluster=1)].PowerOffVM_Task())
    config = write_config(tmp_path / "c.yaml", [("c0", sim.vcenter_section(cluster="DC0_C0")),
                                                ("c1", sim.vcenter_section(cluster="DC0_C1"))], high=0.8, room=0.5)
    r = balancer("recommend", "--config", config, "--domain", "pair", "--format", "json", "--out", "p.json",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (m,) = json.loads((tmp_path / "p.json").read_text())["moves"]
    assert (m["source_cluster"], m["target_cluster"], m["cross_vcenter"]) == ("c0", "c1", False)
    assert m["datastore"] is None and m["storage_copy"] is None  # LocalDS_0: both clusters mount it
    r = balancer("apply", "p.json", "--config", config, "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert admin.placement()[m["vm"]] == m["target"]
    pool = admin.props(admin.vms()[m["vm"]], "resourcePool")["resourcePool"]
    assert pool == admin.clusters()["DC0_C1"].resourcePool
    # journaled as the source cluster's, with the id of vCenter's task that made it
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        ((kind, state, task),) = db.execute("SELECT kind, state, task FROM actions WHERE subject=?", (m["vm"],))
    assert (kind, state) == ("cross", "success") and task.startswith("task-")
    r = balancer("snapshot", "--config", config, "--cluster", "c1", "--out", "c1.json", cwd=tmp_path)
    assert r.returncode == 0 and m["vm"] in {v["name"] for v in json.loads((tmp_path / "c1.json").read_text())["vms"]}


def test_an_incompatible_evc_mode_keeps_the_vm_and_says_why(start_vcsim, tmp_path):
    a = start_vcsim(hosts=2, vms_per_host=4, cpu_mhz=500, cores=2, name_prefix="A_", evc="intel-cascadelake")
    b = start_vcsim(hosts=2, vms_per_host=1, name_prefix="B_", evc="intel-broadwell")
    config = write_config(tmp_path / "c.yaml", [("a", a.vcenter_section()), ("b", b.vcenter_section())],
                          high=0.8, room=0.5)
    r = balancer("recommend", "--config", config, "--domain", "pair", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "No move between clusters" in r.stdout
    assert "EVC mode intel-broadwell" in r.stdout and "lacks CPU features of intel-cascadelake" in r.stdout
    r = balancer("snapshot", "--config", config, "--cluster", "a", "--out", "a.json", cwd=tmp_path)
    snap = json.loads((tmp_path / "a.json").read_text())
    assert snap["evc_mode"] == "intel-cascadelake"
    assert {v.get("min_evc_mode") for v in snap["vms"]} == {"intel-cascadelake"}  # runtime.minRequiredEVCModeKey
    assert {h["max_evc_mode"] for h in snap["hosts"]} == {"intel-cascadelake"}


def test_an_unknown_cluster_in_a_domain_is_one_line(tmp_path, start_vcsim):
    a = start_vcsim(hosts=1, vms_per_host=1)
    cfg = {"clusters": [{"name": "a", "source": "vcenter", "vcenter": a.vcenter_section()}],
           "domains": [{"name": "pair", "clusters": ["a", "nowhere"]}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = balancer("recommend", "--config", "c.yaml", "--domain", "pair", cwd=tmp_path)
    assert r.returncode == 2 and "unknown cluster 'nowhere'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_vm_moved_across_goes_into_the_pool_the_domain_maps_its_pool_to(start_vcsim, tmp_path):
    from pyVmomi import vim

    sim = start_vcsim(hosts=2, vms_per_host=4, cpu_mhz=500, cores=2, clusters=2, evc="intel-broadwell")
    admin = sim.connect()
    for i in range(8):  # DC0_C1's VMs powered off: it has room
        admin.wait(admin.vms()[sim.vm_name(i, cluster=1)].PowerOffVM_Task())
    alloc = vim.ResourceAllocationInfo(reservation=0, limit=-1, expandableReservation=True,
                                       shares=vim.SharesInfo(level="normal", shares=0))
    spec = vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc)
    clusters = admin.clusters()
    prod = clusters["DC0_C0"].resourcePool.CreateResourcePool(name="prod", spec=spec)
    clusters["DC0_C1"].resourcePool.CreateResourcePool(name="prod", spec=spec)
    gold = clusters["DC0_C1"].resourcePool.CreateResourcePool(name="gold", spec=spec)
    for i in range(8):
        admin.wait(admin.vms()[sim.vm_name(i)].RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=prod)))
    config = write_config(tmp_path / "c.yaml", [("c0", sim.vcenter_section(cluster="DC0_C0")),
                                                ("c1", sim.vcenter_section(cluster="DC0_C1"))], high=0.8, room=0.5,
                          pool_map={"prod": "gold"})
    r = balancer("recommend", "--config", config, "--domain", "pair", "--format", "json", "--out", "p.json",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (m,) = json.loads((tmp_path / "p.json").read_text())["moves"]
    assert (m["source_cluster"], m["target_cluster"], m["pool"]) == ("c0", "c1", "gold")
    r = balancer("apply", "p.json", "--config", config, "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert admin.placement()[m["vm"]] == m["target"]
    assert admin.props(admin.vms()[m["vm"]], "resourcePool")["resourcePool"] == gold
