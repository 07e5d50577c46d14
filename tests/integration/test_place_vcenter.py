"""`balancer place --execute` against the vCenter simulator: a powered-off VM is powered on at the best host."""

from __future__ import annotations

import json

import pytest
import yaml

from test_vcenter_cli import balancer, write_config
from vcsim_harness import host_name, vm_name

pytestmark = pytest.mark.integration


def power_state(admin, vm: str) -> str:
    from pyVmomi import vim, vmodl

    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=admin.vms()[vm])],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])])
    return str(admin.content.propertyCollector.RetrieveContents([spec])[0].propSet[0].val)


def test_place_execute_relocates_and_powers_on_a_powered_off_vm(vcsim, admin, tmp_path):
    from pyVmomi import vim

    vm = vm_name(0)  # registered on host 0
    admin.wait(admin.vms()[vm].PowerOffVM_Task())
    admin.wait(admin.hosts()[host_name(0)].EnterMaintenanceMode_Task(timeout=60))
    # VM 1 runs on host 1: an anti-affinity rule with it keeps the new VM off host 1
    add = vim.option.ArrayUpdateSpec.Operation.add
    vms = admin.vms()
    admin.reconfigure(vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(
        operation=add, info=vim.cluster.AntiAffinityRuleSpec(name="apart", enabled=True, vm=[vms[vm], vms[vm_name(1)]]))]))
    config = write_config(vcsim, tmp_path / "vc.yaml")
    spec = tmp_path / "vm.yaml"
    spec.write_text(yaml.safe_dump({"name": vm, "cpu_demand_mhz": 500, "mem_demand_mb": 16}))

    proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    ranked = json.loads(proc.stdout)
    assert ranked["registered_on"] == host_name(0)
    hosts = [c["host"] for c in ranked["hosts"]]
    assert hosts and host_name(0) not in hosts and host_name(1) not in hosts
    why = {r["host"]: r["why"] for r in ranked["rejected"]}
    assert "maintenance" in why[host_name(0)] and "rule apart" in why[host_name(1)]
    assert power_state(admin, vm) == "poweredOff"  # a dry run changes nothing

    proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--execute", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    best = done["placement"]["hosts"][0]["host"]
    assert best in hosts  # (the simulator's load samples are noisy: the order may change between runs)
    assert admin.placement()[vm] == best and power_state(admin, vm) == "poweredOn"
    assert f"powered on at {best}" in done["result"]

    # now it runs: placing it again is bad input, nothing is done
    proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--execute")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "already powered on" in errors[0]


def test_place_execute_wakes_a_standby_host_only_when_no_host_that_is_on_fits(start_vcsim, tmp_path):
    from pyVmomi import vim

    sim = start_vcsim(hosts=3, vms_per_host=1)
    admin = sim.connect()
    try:
        vm = vm_name(0)
        admin.wait(admin.vms()[vm].PowerOffVM_Task())
        admin.wait(admin.vms()[vm_name(2)].PowerOffVM_Task())
        admin.wait(admin.hosts()[host_name(2)].PowerDownHostToStandBy_Task(timeoutSec=60))
        # a must-run-on rule: the VM's group may run only on host 2, which is in standby
        add = vim.option.ArrayUpdateSpec.Operation.add
        admin.reconfigure(vim.cluster.ConfigSpecEx(
            groupSpec=[
                vim.cluster.GroupSpec(operation=add, info=vim.cluster.VmGroup(name="late", vm=[admin.vms()[vm_name(1)]])),
                vim.cluster.GroupSpec(operation=add, info=vim.cluster.HostGroup(name="h2", host=[admin.hosts()[host_name(2)]])),
            ],
            rulesSpec=[vim.cluster.RuleSpec(operation=add, info=vim.cluster.VmHostRuleInfo(
                name="late-on-h2", enabled=True, mandatory=True, vmGroupName="late", affineHostGroupName="h2"))]))
        config = write_config(sim, tmp_path / "vc.yaml")
        spec = tmp_path / "vm.json"
        spec.write_text(json.dumps({"name": vm, "cpu_demand_mhz": 100, "vm_groups": ["late"]}))
        proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        ranked = json.loads(proc.stdout)
        assert [(c["host"], c["power_on"]) for c in ranked["hosts"]] == [(host_name(2), True)]

        proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--execute")
        assert proc.returncode == 0, proc.stderr
        assert admin.host_power_state(host_name(2)) == "poweredOn"
        assert admin.placement()[vm] == host_name(2) and power_state(admin, vm) == "poweredOn"
    finally:
        admin.close()


def test_place_with_disks_picks_datastores_every_listed_host_mounts(start_vcsim, tmp_path):
    """#33: the last datastore is mounted by hosts 0 and 1 only (-partial-datastores 1): a spec whose three disks
    are not kept together spreads them (the least used after first), and every host listed mounts each one."""
    sim = start_vcsim(hosts=4, vms_per_host=1, datastores=3, partial_datastores=1, datastore_gb=100,
                      datastore_free_gb=40, disk_gb=5)
    config = write_config(sim, tmp_path / "vc.yaml")
    spec = tmp_path / "vm.json"
    spec.write_text(json.dumps({"name": "new-vm", "vcpus": 1, "mem_mb": 64, "cpu_demand_mhz": 100,
                                "keep_disks_together": False,
                                "disks": [{"size_gb": 10}, {"size_gb": 10}, {"size_gb": 10, "thin": True}]}))
    proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)
    snap_path = tmp_path / "s.json"
    assert balancer("snapshot", "--config", config, "--out", str(snap_path)).returncode == 0
    mounts = {d["name"]: set(d["hosts"]) for d in json.loads(snap_path.read_text())["datastores"]}
    assert mounts["LocalDS_2"] == {host_name(0), host_name(1)}
    chosen = {d["datastore"] for d in p["disks"]}
    assert len(p["disks"]) == 3 and p["hosts"]
    for c in p["hosts"]:
        assert all(c["host"] in mounts[d] for d in chosen)
    rejected = {r["host"]: r["why"] for r in p["rejected"]}
    if "LocalDS_2" in chosen:
        assert "does not mount datastore LocalDS_2" in rejected[host_name(2)]
    else:
        assert "not mounted by" in {r["datastore"]: r["why"] for r in p["rejected_datastores"]}["LocalDS_2"]
    assert all(s["space_after"] <= s["space_threshold"] for s in p["datastores"])


def test_place_execute_moves_the_disk_the_placement_wants_elsewhere_then_powers_on(start_vcsim, tmp_path):
    """#33: a powered-off VM whose disk is on a datastore above its space threshold: `place --execute` with a
    spec listing the disk moves the disk to the datastore the placement chose (with the relocation) and powers
    the VM on at the chosen host; vCenter, read back, has the VM on at that host and its disk on that datastore."""
    from pyVmomi import vim

    sim = start_vcsim(hosts=2, vms_per_host=2, datastores=2, datastore_gb=100, datastore_free_gb=50, disk_gb=10)
    admin = sim.connect()
    try:
        vm = vm_name(1)
        stores = admin.datastores()
        # four 10 GB disks go from LocalDS_0 to LocalDS_1: LocalDS_1 at 90 % (above 80 %), LocalDS_0 at 10 %
        for i in range(4):
            admin.wait(admin.vms()[vm_name(i)].RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=stores["LocalDS_1"])))
        admin.wait(admin.vms()[vm].PowerOffVM_Task())
        (label_key, on) = next(iter(admin.disks()[vm].items()))
        assert on == "LocalDS_1"
        config = write_config(sim, tmp_path / "vc.yaml")
        snap_path = tmp_path / "s.json"
        assert balancer("snapshot", "--config", config, "--out", str(snap_path)).returncode == 0
        snap = json.loads(snap_path.read_text())
        used = {d["name"]: 1 - d["free_gb"] / d["capacity_gb"] for d in snap["datastores"]}
        assert used == {"LocalDS_0": pytest.approx(0.1), "LocalDS_1": pytest.approx(0.9)}
        (disk,) = next(v for v in snap["vms"] if v["name"] == vm)["disks"]
        spec = tmp_path / "vm.json"
        spec.write_text(json.dumps({"name": vm, "cpu_demand_mhz": 100, "disks": [{"name": disk["name"],
                                                                                  "size_gb": disk["size_gb"]}]}))

        proc = balancer("place", "--vm-spec", str(spec), "--config", config, "--execute", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        done = json.loads(proc.stdout)
        best = done["placement"]["hosts"][0]["host"]
        assert [(d["disk"], d["datastore"], d["moved_from"]) for d in done["placement"]["disks"]] == \
            [(disk["name"], "LocalDS_0", "LocalDS_1")]
        assert f"disks moved ({disk['name']} to LocalDS_0)" in done["result"] and f"powered on at {best}" in done["result"]
        # read back from vCenter
        assert admin.placement()[vm] == best and power_state(admin, vm) == "poweredOn"
        assert admin.disks()[vm] == {label_key: "LocalDS_0"}
        assert admin.disks()[vm_name(0)] == {next(iter(admin.disks()[vm_name(0)])): "LocalDS_1"}  # the others stay
    finally:
        admin.close()
