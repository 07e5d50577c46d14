"""Moves across clusters and across vCenters on the simulator launcher, with plain pyVmomi.

One instance with two clusters: a VM moved to a host of the other cluster with that cluster's pool
lands there (runtime.host, resourcePool and the hosts' and pools' VM lists). Two instances A and B: a
RelocateVM_Task with a ServiceLocator of B moves the VM out of A into B; refused moves (bad password,
wrong instance UUID, an unreachable vCenter, a name B has) leave both as they were. EVC modes and host
networks show where vCenter shows them, and relocations against them are refused.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

pyVmomi = pytest.importorskip("pyVmomi")
vim, vmodl = pyVmomi.vim, pyVmomi.vmodl


def names(objs) -> list[str]:
    return sorted(o.name for o in objs)


def test_a_vm_moves_to_a_host_of_another_cluster_with_that_clusters_pool(start_vcsim):
    sim = start_vcsim(clusters=2, hosts=2, vms_per_host=1)
    admin = sim.connect()
    clusters, hosts, vms = admin.clusters(), admin.hosts(), admin.vms()
    c0, c1 = clusters["DC0_C0"], clusters["DC0_C1"]
    # Each cluster's VMs are in its own root pool and on its own hosts.
    assert names(admin.props(c0.resourcePool, "vm")["vm"]) == [sim.vm_name(0), sim.vm_name(1)]
    assert names(admin.props(c1.resourcePool, "vm")["vm"]) == [sim.vm_name(0, 1), sim.vm_name(1, 1)]
    assert admin.placement()[sim.vm_name(0, 1)] == sim.host_name(0, 1)

    vm, target = vms[sim.vm_name(0)], hosts[sim.host_name(1, 1)]
    admin.wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=target, pool=c1.resourcePool)))

    p = admin.props(vm, "runtime.host", "resourcePool")
    assert p["runtime.host"] == target and p["resourcePool"] == c1.resourcePool
    assert names(admin.props(c1.resourcePool, "vm")["vm"]) == [sim.vm_name(0), sim.vm_name(0, 1), sim.vm_name(1, 1)]
    assert names(admin.props(c0.resourcePool, "vm")["vm"]) == [sim.vm_name(1)]
    assert names(admin.props(target, "vm")["vm"]) == [sim.vm_name(0), sim.vm_name(1, 1)]
    assert admin.props(hosts[sim.host_name(0)], "vm").get("vm", []) == []
    assert sim.stats()["relocations"][-1]["target"] == sim.host_name(1, 1)


def test_a_move_to_another_cluster_without_its_pool_is_refused(start_vcsim):
    sim = start_vcsim(clusters=2, hosts=2, vms_per_host=1)
    admin = sim.connect()
    clusters, hosts, vm = admin.clusters(), admin.hosts(), admin.vms()[sim.vm_name(0)]
    with pytest.raises(vmodl.fault.InvalidArgument, match="spec.pool must be a resource pool of DC0_C1"):
        admin.wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=hosts[sim.host_name(0, 1)])))
    with pytest.raises(vmodl.fault.InvalidArgument, match="belongs to DC0_C0"):  # the pool of the VM's cluster
        admin.wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=hosts[sim.host_name(0, 1)],
                                                               pool=clusters["DC0_C0"].resourcePool)))
    assert admin.placement()[sim.vm_name(0)] == sim.host_name(0)
    assert sim.stats()["relocations"][-1]["failed"]


def two_vcenters(start_vcsim, **b_flags):
    a = start_vcsim(hosts=2, vms_per_host=1, name_prefix="A_", disk_gb=2)
    b = start_vcsim(hosts=2, vms_per_host=1, name_prefix="B_", datastores=2, **b_flags)
    return a, a.connect(), b, b.connect()


def spec_into(b_admin, b, host: int = 1, datastore: str = "LocalDS_1", **locator):
    """A RelocateSpec into B: its VM folder, DC0_C0's pool, a host and a datastore, with B's locator."""
    return vim.vm.RelocateSpec(service=b_admin.locator(**locator), folder=b_admin.datacenter().vmFolder,
                               pool=b_admin.clusters()["DC0_C0"].resourcePool, host=b_admin.hosts()[b.host_name(host)],
                               datastore=b_admin.datastores()[datastore])


def test_a_vm_moves_to_another_vcenter_with_a_service_locator(start_vcsim):
    a, a_admin, b, b_admin = two_vcenters(start_vcsim)
    name = a.vm_name(1)
    vm = a_admin.vms()[name]
    before = a_admin.props(vm, "config.hardware.numCPU", "config.hardware.memoryMB", "config.uuid")
    a_admin.wait(vm.RelocateVM_Task(spec=spec_into(b_admin, b)))

    assert name not in a_admin.vms()
    moved = b_admin.vms()[name]
    p = b_admin.props(moved, "runtime.host", "runtime.powerState", "config.hardware.numCPU", "config.hardware.memoryMB",
                      "config.uuid", "config.hardware.device", "resourcePool", "network")
    assert p["runtime.host"] == b_admin.hosts()[b.host_name(1)]
    assert p["runtime.powerState"] == "poweredOn"
    assert p["resourcePool"] == b_admin.clusters()["DC0_C0"].resourcePool
    assert [p[k] for k in ("config.hardware.numCPU", "config.hardware.memoryMB", "config.uuid")] == \
        [before[k] for k in ("config.hardware.numCPU", "config.hardware.memoryMB", "config.uuid")]
    disks = [d for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualDisk)]
    assert [(d.capacityInKB, d.backing.datastore) for d in disks] == [(2 * 1024 * 1024, b_admin.datastores()["LocalDS_1"])]
    assert disks[0].backing.fileName.startswith("[LocalDS_1] ")
    assert [n.name for n in p["network"]] == ["DC0_DVPG0"]  # the port group of the same name there
    assert name in names(b_admin.props(b_admin.hosts()[b.host_name(1)], "vm")["vm"])
    assert b_admin.placement()[name] == b.host_name(1)

    log = a.stats()["relocations"][-1]
    assert (log["vm"], log["source"], log["target"], log["target_vcenter"], log["datastore"], log["failed"]) == \
        (name, a.host_name(1), b.host_name(1), b.url, "LocalDS_1", False)


def test_a_move_to_another_vcenter_with_a_wrong_password_fails_and_changes_nothing(start_vcsim):
    a, a_admin, b, b_admin = two_vcenters(start_vcsim)
    name = a.vm_name(0)
    vm = a_admin.vms()[name]
    with pytest.raises(vim.fault.InvalidLogin, match="incorrect user name or password"):
        a_admin.wait(vm.RelocateVM_Task(spec=spec_into(b_admin, b, password="wrong")))

    wrong_uuid = spec_into(b_admin, b)
    wrong_uuid.service.instanceUuid = a_admin.content.about.instanceUuid  # A's own, not B's
    with pytest.raises(vmodl.fault.InvalidArgument, match="does not match"):
        a_admin.wait(vm.RelocateVM_Task(spec=wrong_uuid))

    gone = spec_into(b_admin, b)
    gone.service.url = f"http://127.0.0.1:{b.port}/nothing-here"
    with pytest.raises(vmodl.fault.SystemError, match="cannot reach vCenter"):
        a_admin.wait(vm.RelocateVM_Task(spec=gone))

    assert a_admin.placement()[name] == a.host_name(0)
    assert a_admin.props(vm, "runtime.powerState")["runtime.powerState"] == "poweredOn"
    assert name not in b_admin.vms()
    assert [r["failed"] for r in a.stats()["relocations"]] == [True, True, True]


def test_a_name_the_other_vcenter_has_is_refused(start_vcsim):
    a, a_admin, b, b_admin = two_vcenters(start_vcsim)
    vm = a_admin.vms()[a.vm_name(0)]
    a_admin.wait(vm.Rename_Task(b.vm_name(0)))
    with pytest.raises(vim.fault.DuplicateName, match=f"already has a VM named {b.vm_name(0)}"):
        a_admin.wait(vm.RelocateVM_Task(spec=spec_into(b_admin, b)))
    assert b.vm_name(0) in a_admin.vms()
    assert sorted(b_admin.vms()) == [b.vm_name(0), b.vm_name(1)]


def test_evc_modes_show_in_the_cluster_and_host_summaries(start_vcsim):
    sim = start_vcsim(clusters=2, hosts=2, vms_per_host=1, evc="intel-broadwell,intel-haswell")
    admin = sim.connect()
    clusters, hosts = admin.clusters(), admin.hosts()
    assert admin.props(clusters["DC0_C0"], "summary")["summary"].currentEVCModeKey == "intel-broadwell"
    assert admin.props(clusters["DC0_C1"], "summary")["summary"].currentEVCModeKey == "intel-haswell"
    h = admin.props(hosts[sim.host_name(0)], "summary.maxEVCModeKey", "summary.hardware.cpuModel", "hardware.cpuPkg")
    assert h["summary.maxEVCModeKey"] == "intel-broadwell"
    assert "v4" in h["summary.hardware.cpuModel"] and {p.vendor for p in h["hardware.cpuPkg"]} == {"intel"}
    assert admin.props(hosts[sim.host_name(0, 1)], "summary.maxEVCModeKey")["summary.maxEVCModeKey"] == "intel-haswell"
    assert "intel-broadwell" in [m.key for m in admin.si.capability.supportedEVCMode]

    # A VM running with Broadwell's features cannot go to a Haswell cluster; the other way round it can.
    vms = admin.vms()
    assert admin.props(vms[sim.vm_name(0)], "runtime.minRequiredEVCModeKey")["runtime.minRequiredEVCModeKey"] == "intel-broadwell"
    with pytest.raises(vim.fault.FeatureRequirementsNotMet, match="offers intel-haswell"):
        admin.wait(vms[sim.vm_name(0)].RelocateVM_Task(spec=vim.vm.RelocateSpec(
            host=hosts[sim.host_name(0, 1)], pool=clusters["DC0_C1"].resourcePool)))
    admin.wait(vms[sim.vm_name(0, 1)].RelocateVM_Task(spec=vim.vm.RelocateSpec(
        host=hosts[sim.host_name(0)], pool=clusters["DC0_C0"].resourcePool)))
    assert admin.placement()[sim.vm_name(0, 1)] == sim.host_name(0)


def test_host_networks_are_readable_and_a_move_needs_the_vms_network(start_vcsim):
    sim = start_vcsim(clusters=2, hosts=2, vms_per_host=1, host_networks="prod,backup;lab")
    admin = sim.connect()
    clusters, hosts, vms = admin.clusters(), admin.hosts(), admin.vms()
    assert names(admin.props(hosts[sim.host_name(1)], "network")["network"]) == ["backup", "prod"]
    assert names(admin.props(hosts[sim.host_name(0, 1)], "network")["network"]) == ["lab"]
    assert names(admin.props(vms[sim.vm_name(0)], "network")["network"]) == ["prod"]

    vm, target = vms[sim.vm_name(0)], hosts[sim.host_name(0, 1)]
    with pytest.raises(vim.fault.InvalidDeviceBacking, match="uses network prod"):
        admin.wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=target, pool=clusters["DC0_C1"].resourcePool)))
    # Moving the card to the target's network with spec.deviceChange makes the move possible.
    card = [d for d in admin.props(vm, "config.hardware.device")["config.hardware.device"]
            if isinstance(d, vim.vm.device.VirtualEthernetCard)][0]
    card.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="lab")
    change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=card)
    admin.wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=target, pool=clusters["DC0_C1"].resourcePool,
                                                           deviceChange=[change])))
    assert admin.placement()[sim.vm_name(0)] == sim.host_name(0, 1)
    assert names(admin.props(vm, "network")["network"]) == ["lab"]
