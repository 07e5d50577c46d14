"""Storage DRS against the simulator launcher: rules set in the datastore cluster through
vCenter's own call (StorageResourceManager.ConfigureStorageDrsForPod_Task) reach the snapshot, and `balancer
recommend`'s storage moves honour them; datastore latency the launcher reports (QueryPerf,
-datastore-latency-ms) reaches the snapshot, and a datastore above the threshold sheds disks.

The simulator (tests/vcsim): 4 hosts, 2 VMs each, datastores LocalDS_0..2 of 100 GB in the storage
pod DC0_POD0 (LocalDS_2 mounted by the first two hosts only), every VM's 5 GB disk on LocalDS_0.
"""

from __future__ import annotations

import json

import pytest

from balancer.snapshot import load_snapshot
from test_vcenter_cli import balancer, write_config
from test_vcenter_storage import STORAGE
from vcsim_harness import vm_name

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(start_vcsim):
    return start_vcsim(**STORAGE)


def _pod(admin):
    from pyVmomi import vim

    view = admin.content.viewManager.CreateContainerView(admin.content.rootFolder, [vim.StoragePod], True)
    try:
        [pod] = view.view
    finally:
        view.DestroyView()
    return pod


def _add_disk(admin, vm: str, gb: int) -> None:
    """A second disk for ``vm``, on LocalDS_0 (ReconfigVM_Task)."""
    from pyVmomi import vim

    obj = admin.vms()[vm]
    [ctrl] = [d for d in admin.props(obj, "config.hardware.device")["config.hardware.device"]
              if isinstance(d, vim.vm.device.VirtualDisk)][:1]
    disk = vim.vm.device.VirtualDisk(
        key=-1, controllerKey=ctrl.controllerKey, unitNumber=ctrl.unitNumber + 1, capacityInKB=gb * 1024 * 1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", fileName="[LocalDS_0]"))
    change = vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)
    admin.wait(obj.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))


def _configure(admin, rules=(), vm_configs=(), **pod) -> None:
    from pyVmomi import vim

    spec = vim.storageDrs.ConfigSpec(
        podConfigSpec=vim.storageDrs.PodConfigSpec(rule=list(rules), **pod),
        vmConfigSpec=list(vm_configs))
    admin.wait(admin.content.storageResourceManager.ConfigureStorageDrsForPod_Task(pod=_pod(admin), spec=spec,
                                                                                  modify=True))


def _snapshot(sim, tmp_path):
    config = write_config(sim, tmp_path / "vc.yaml")
    out = tmp_path / "s.json"
    proc = balancer("snapshot", "--config", config, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return config, load_snapshot(out)


def test_vmdk_and_vm_anti_affinity_rules_of_the_pod_reach_the_snapshot_and_recommend_honours_them(sim, tmp_path):
    from pyVmomi import vim

    admin = sim.connect()
    db, web1, web2 = vm_name(0), vm_name(1), vm_name(2)
    _add_disk(admin, db, 3)
    keys = list(admin.disks()[db])
    assert len(keys) == 2
    vms = admin.vms()
    _configure(
        admin,
        rules=[vim.cluster.RuleSpec(operation="add", info=vim.cluster.AntiAffinityRuleSpec(
            name="web-apart", enabled=True, vm=[vms[web1], vms[web2]]))],
        vm_configs=[vim.storageDrs.VmConfigSpec(operation="add", info=vim.storageDrs.VmConfigInfo(
            vm=vms[db], intraVmAntiAffinity=vim.storageDrs.VirtualDiskAntiAffinityRuleSpec(
                name="db-disks-apart", enabled=True, diskId=keys)))])

    config, snap = _snapshot(sim, tmp_path)
    rules = {r.name: r for r in snap.storage_rules}
    assert sorted(rules) == ["db-disks-apart", "web-apart"]
    assert rules["web-apart"].type == "vm-datastore-anti-affinity" and sorted(rules["web-apart"].vms) == [web1, web2]
    assert rules["db-disks-apart"].type == "vmdk-anti-affinity" and rules["db-disks-apart"].vm == db
    assert sorted(rules["db-disks-apart"].disks) == sorted(k.name for k in snap.vm(db).disks)
    assert all(r.enabled for r in rules.values())

    # both rules are broken at the start (every disk on LocalDS_0): recommend mends them
    proc = balancer("recommend", "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    where = {(v.name, k.name): k.datastore for v in snap.vms for k in v.disks}
    for m in plan["storage_moves"]:
        assert m["reason"] == "rule" and m["rule"] in rules
        for d in m["disks"]:
            assert where[(m["vm"], d["disk"])] == d["source"]
            where[(m["vm"], d["disk"])] = d["target"]
    db_disks = [ds for (vm, _), ds in where.items() if vm == db]
    assert len(set(db_disks)) == 2, "the VMDK anti-affinity rule holds after the plan"
    web1_ds = {ds for (vm, _), ds in where.items() if vm == web1}
    web2_ds = {ds for (vm, _), ds in where.items() if vm == web2}
    assert not web1_ds & web2_ds, "the VM anti-affinity rule holds after the plan"
    assert {m["rule"] for m in plan["storage_moves"]} == {"db-disks-apart", "web-apart"}


def test_intra_vm_affinity_edits_and_removals_of_pod_rules_reach_the_snapshot(sim, tmp_path):
    from pyVmomi import vim

    admin = sim.connect()
    db, web1, web2, web3 = vm_name(0), vm_name(1), vm_name(2), vm_name(3)
    _add_disk(admin, db, 3)
    vms = admin.vms()
    _configure(
        admin, defaultIntraVmAffinity=False,
        rules=[vim.cluster.RuleSpec(operation="add", info=vim.cluster.AntiAffinityRuleSpec(
                   name="web-apart", enabled=True, vm=[vms[web1], vms[web2]])),
               vim.cluster.RuleSpec(operation="add", info=vim.cluster.AntiAffinityRuleSpec(
                   name="old", enabled=True, vm=[vms[web1], vms[web3]]))],
        vm_configs=[vim.storageDrs.VmConfigSpec(operation="add", info=vim.storageDrs.VmConfigInfo(
            vm=vms[db], intraVmAffinity=True))])
    _, snap = _snapshot(sim, tmp_path)
    rules = {r.name: r for r in snap.storage_rules}
    assert sorted(rules) == ["DC0_C0_RP0_VM0-disks-together", "old", "web-apart"]
    together = rules["DC0_C0_RP0_VM0-disks-together"]
    assert together.type == "vmdk-affinity" and together.vm == db and together.disks == []

    # an edit (the rule disabled, a third VM) and a removal, by the rules' keys
    from pyVmomi import vmodl

    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=_pod(admin))],
                         propSet=[PC.PropertySpec(type=vim.StoragePod, pathSet=["podStorageDrsEntry"])])
    entry = admin.content.propertyCollector.RetrieveContents([spec])[0].propSet[0].val
    key = {r.name: r.key for r in entry.storageDrsConfig.podConfig.rule}
    _configure(
        admin,
        rules=[vim.cluster.RuleSpec(operation="edit", info=vim.cluster.AntiAffinityRuleSpec(
                   key=key["web-apart"], name="web-apart", enabled=False, vm=[vms[web1], vms[web2], vms[web3]])),
               vim.cluster.RuleSpec(operation="remove", removeKey=key["old"])])
    _, snap = _snapshot(sim, tmp_path)
    rules = {r.name: r for r in snap.storage_rules}
    assert sorted(rules) == ["DC0_C0_RP0_VM0-disks-together", "web-apart"]
    assert rules["web-apart"].enabled is False and sorted(rules["web-apart"].vms) == [web1, web2, web3]


def test_a_datastore_above_the_latency_threshold_gets_storage_moves_off_it(start_vcsim, tmp_path):
    # the launcher's QueryPerf reports LocalDS_0 at 40 ms and LocalDS_1 at 5 ms on every host mounting them
    sim = start_vcsim(**STORAGE, datastore_latency_ms="LocalDS_0=40,LocalDS_1=5")
    config, snap = _snapshot(sim, tmp_path)
    latency = {d.name: d.latency_ms for d in snap.datastores}
    assert latency == {"LocalDS_0": 40.0, "LocalDS_1": 5.0, "LocalDS_2": None}
    assert all(d.used_gb <= 0.8 * d.capacity_gb for d in snap.datastores), "only latency is above its threshold"
    proc = balancer("recommend", "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    moves = json.loads(proc.stdout)["storage_moves"]
    assert moves, "the slow datastore sheds disks"
    for m in moves:
        assert m["reason"] == "latency" and "LocalDS_0 at 40.0 ms" in m["detail"]
        assert {(d["source"], d["target"]) for d in m["disks"]} == {("LocalDS_0", "LocalDS_1")}
    # (a datastore with no measured latency, LocalDS_2, is no latency target)


def test_without_latency_figures_the_simulator_s_datastores_have_none(sim, tmp_path):
    _, snap = _snapshot(sim, tmp_path)
    assert [d.latency_ms for d in snap.datastores] == [None, None, None]


def test_the_pods_own_storage_drs_settings_reach_the_snapshot_and_change_the_plan(start_vcsim, tmp_path):
    from pyVmomi import vim

    sim = start_vcsim(**STORAGE, datastore_latency_ms="LocalDS_0=40,LocalDS_1=5")
    admin = sim.connect()
    config, snap = _snapshot(sim, tmp_path)
    # the launcher's pod has the settings vCenter gives a new datastore cluster, fully automated
    [pod] = snap.datastore_clusters
    assert pod.model_dump() == {"name": "DC0_POD0", "enabled": True, "automation": "automated", "space_threshold": 0.8,
                                "free_space_gb": None, "min_space_difference": 0.05, "io_balancing": True,
                                "latency_threshold_ms": 15.0, "keep_disks_together": True}

    def recommend():
        proc = balancer("recommend", "--config", config, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert recommend()["storage_moves"], "LocalDS_0 at 40 ms is above the pod's 15 ms"
    # the pod's latency threshold raised to 50 ms: nothing to shed
    _configure(admin, ioLoadBalanceConfig=vim.storageDrs.IoLoadBalanceConfig(ioLatencyThreshold=50))
    _, snap = _snapshot(sim, tmp_path)
    assert snap.datastore_clusters[0].latency_threshold_ms == 50.0
    plan = recommend()
    assert plan["storage_moves"] == []
    assert {d["name"]: d.get("latency_threshold_ms") for d in plan["datastores"]}["LocalDS_0"] == 50.0
    # 30 ms and manual automation: the moves are recommendations for an admin
    _configure(admin, defaultVmBehavior="manual", ioLoadBalanceConfig=vim.storageDrs.IoLoadBalanceConfig(ioLatencyThreshold=30))
    plan = recommend()
    assert plan["storage_moves"] and all("automation is manual" in m["detail"] for m in plan["storage_moves"])
    assert {d["automation"] for d in plan["datastores"] if d.get("datastore_cluster") == "DC0_POD0"} == {"manual"}
    # the I/O metric off in the pod: latency is not judged there
    _configure(admin, ioLoadBalanceEnabled=False)
    plan = recommend()
    assert plan["storage_moves"] == [] and all("latency_threshold_ms" not in d for d in plan["datastores"])
    # a free-space threshold: read in GB
    _configure(admin, spaceLoadBalanceConfig=vim.storageDrs.SpaceLoadBalanceConfig(
        spaceThresholdMode="freeSpace", freeSpaceThresholdGB=30, minSpaceUtilizationDifference=5))
    _, snap = _snapshot(sim, tmp_path)
    assert snap.datastore_clusters[0].free_space_gb == 30.0 and snap.datastore_clusters[0].space_threshold is None
