"""The collector against the vCenter simulator: the snapshot holds exactly what vCenter holds."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from balancer.errors import SourceError
from balancer.snapshot import Automation, HostState, VmHostRule, VmVmRule
from vcsim_harness import CLUSTER, PASSWORD, host_name, vm_name

pytestmark = pytest.mark.integration


def _configure(admin) -> None:
    """Groups, rules and per-VM overrides, written the way an administrator would (ReconfigureComputeResource_Task)."""
    from pyVmomi import vim

    vms, hosts = admin.vms(), admin.hosts()
    add = vim.option.ArrayUpdateSpec.Operation.add
    spec = vim.cluster.ConfigSpecEx(
        groupSpec=[
            vim.cluster.GroupSpec(operation=add, info=vim.cluster.VmGroup(name="web", vm=[vms[vm_name(0)], vms[vm_name(4)]])),
            vim.cluster.GroupSpec(operation=add, info=vim.cluster.VmGroup(name="batch", vm=[vms[vm_name(9)]])),
            vim.cluster.GroupSpec(operation=add, info=vim.cluster.HostGroup(name="rack-a", host=[hosts[host_name(0)], hosts[host_name(1)]])),
            vim.cluster.GroupSpec(operation=add, info=vim.cluster.HostGroup(name="rack-b", host=[hosts[host_name(2)]])),
        ],
        rulesSpec=[
            vim.cluster.RuleSpec(operation=add, info=vim.cluster.AffinityRuleSpec(
                name="db-together", enabled=True, mandatory=False, vm=[vms[vm_name(1)], vms[vm_name(5)]])),
            vim.cluster.RuleSpec(operation=add, info=vim.cluster.AntiAffinityRuleSpec(
                name="spread", enabled=True, vm=[vms[vm_name(2)], vms[vm_name(6)], vms[vm_name(10)]])),
            vim.cluster.RuleSpec(operation=add, info=vim.cluster.VmHostRuleInfo(
                name="web-on-a", enabled=True, mandatory=True, vmGroupName="web", affineHostGroupName="rack-a")),
            vim.cluster.RuleSpec(operation=add, info=vim.cluster.VmHostRuleInfo(
                name="batch-off-b", enabled=False, mandatory=False, vmGroupName="batch", antiAffineHostGroupName="rack-b")),
        ],
        drsVmConfigSpec=[
            vim.cluster.DrsVmConfigSpec(operation=add, info=vim.cluster.DrsVmConfigInfo(
                key=vms[vm_name(3)], behavior="manual")),
            vim.cluster.DrsVmConfigSpec(operation=add, info=vim.cluster.DrsVmConfigInfo(
                key=vms[vm_name(7)], enabled=False)),
            vim.cluster.DrsVmConfigSpec(operation=add, info=vim.cluster.DrsVmConfigInfo(
                key=vms[vm_name(8)], enabled=True, behavior="fullyAutomated")),
            vim.cluster.DrsVmConfigSpec(operation=add, info=vim.cluster.DrsVmConfigInfo(
                key=vms[vm_name(10)], enabled=True, behavior="partiallyAutomated")),
        ],
    )
    admin.reconfigure(spec)


def test_snapshot_reproduces_inventory_rules_and_groups(vcsim, admin):
    _configure(admin)
    admin.wait(admin.vms()[vm_name(11)].PowerOffVM_Task())
    admin.wait(admin.hosts()[host_name(3)].EnterMaintenanceMode_Task(timeout=0))
    admin.relocate(vm_name(0), host_name(1))  # HostSystem.vm goes stale; runtime.host is the truth

    with vcsim.source() as src:
        snap = src.snapshot()

    assert snap.cluster == CLUSTER and snap.source == "vcenter"
    assert snap.collected_at is not None and snap.collected_at.utcoffset() == timedelta(0)

    assert sorted(h.name for h in snap.hosts) == [host_name(i) for i in range(4)]
    for h in snap.hosts:
        assert h.cpu_capacity_mhz == 2000 * 8 and h.cpu_cores == 8 and h.mem_capacity_mb == 65536
        assert h.cpu_threads == 16  # logical CPUs (summary.hardware.numCpuThreads): two threads a core
    assert {h.name: h.state for h in snap.hosts} == {
        host_name(0): HostState.ON, host_name(1): HostState.ON, host_name(2): HostState.ON,
        host_name(3): HostState.MAINTENANCE,
    }

    expected = {vm_name(i): host_name(i % 4) for i in range(12)}
    expected[vm_name(0)] = host_name(1)
    assert {v.name: v.host for v in snap.vms} == expected == admin.placement()

    vms = {v.name: v for v in snap.vms}
    assert vms[vm_name(11)].powered_on is False
    assert vms[vm_name(11)].cpu_demand_mhz == 0 and vms[vm_name(11)].mem_demand_mb == 0
    for v in snap.vms:
        assert v.vcpus >= 1 and v.mem_mb > 0
        assert math.isfinite(v.cpu_demand_mhz) and v.cpu_demand_mhz >= 0
        assert 0 <= v.mem_demand_mb <= v.mem_mb
        if v.powered_on:
            assert v.cpu_demand_mhz > 0  # the simulator's real-time samples were read
    assert {n: v.automation for n, v in vms.items() if v.automation is not Automation.DEFAULT} == {
        vm_name(3): Automation.MANUAL, vm_name(7): Automation.DISABLED, vm_name(8): Automation.FULLY_AUTOMATED,
        vm_name(10): Automation.PARTIALLY_AUTOMATED,
    }

    assert snap.vm_groups == {"web": [vm_name(0), vm_name(4)], "batch": [vm_name(9)]}
    assert snap.host_groups == {"rack-a": [host_name(0), host_name(1)], "rack-b": [host_name(2)]}
    assert sorted(snap.rules, key=lambda r: r.name) == [
        VmHostRule(name="batch-off-b", type="vm-host", vm_group="batch", host_group="rack-b", affine=False,
                   mandatory=False, enabled=False),
        VmVmRule(name="db-together", type="vm-affinity", vms=[vm_name(1), vm_name(5)], mandatory=False, enabled=True),
        VmVmRule(name="spread", type="vm-anti-affinity", vms=[vm_name(2), vm_name(6), vm_name(10)], mandatory=True,
                 enabled=True),
        VmHostRule(name="web-on-a", type="vm-host", vm_group="web", host_group="rack-a", affine=True,
                   mandatory=True, enabled=True),
    ]


def test_duplicate_vm_names_are_one_clear_error(vcsim, admin):
    # vCenter keeps names unique per folder only: the same name can exist in two folders.
    from pyVmomi import vim

    dc = [e for e in admin.content.rootFolder.childEntity if isinstance(e, vim.Datacenter)][0]
    other = dc.vmFolder.CreateFolder("other")
    admin.wait(other.MoveIntoFolder_Task([admin.vms()[vm_name(5)]]))
    admin.wait(admin.vms()[vm_name(5)].Rename_Task(vm_name(2)))
    with vcsim.source() as src:
        with pytest.raises(SourceError) as err:
            src.snapshot()
    msg = str(err.value)
    assert "\n" not in msg and vm_name(2) in msg and "unique" in msg
    assert err.value.__cause__ is None


def test_unknown_cluster_is_a_clear_error(vcsim):
    from balancer.sources.vcenter import VCenterSource

    src = VCenterSource(vcsim.config(cluster="no-such-cluster"))
    try:
        with pytest.raises(SourceError, match="cluster 'no-such-cluster' not found.*DC0_C0"):
            src.snapshot()
    finally:
        src.close()


def test_bad_password_and_unreachable_vcenter(vcsim, monkeypatch, tmp_path):
    from balancer.config import VCenterConfig
    from balancer.sources.vcenter import VCenterSource

    secret = "s3cret-not-the-password"
    monkeypatch.setenv("VCSIM_WRONG_PASSWORD", secret)
    cfg = vcsim.config(password_env="VCSIM_WRONG_PASSWORD")
    with pytest.raises(SourceError) as err:
        VCenterSource(cfg)
    assert "login failed for user 'user'" in str(err.value) and secret not in str(err.value)

    vcsim.stop()
    with pytest.raises(SourceError) as err:
        VCenterSource(VCenterConfig.model_validate(vcsim.vcenter_section()))
    assert "cannot connect" in str(err.value) and PASSWORD not in str(err.value)
    assert "\n" not in str(err.value)


def test_session_loss_is_repaired(vcsim):
    with vcsim.source() as src:
        before = src.snapshot()
        src.conn.content.sessionManager.Logout()  # the session ends (as on a vCenter restart or idle timeout)
        after = src.snapshot()
    assert {v.name: v.host for v in after.vms} == {v.name: v.host for v in before.vms}


def test_mounts_are_read_from_both_sides_as_a_stock_simulator_fills_them(start_vcsim):
    # a stock govmomi simulator lists only the last host under each datastore; every host lists the
    # datastore itself. Read from both sides, every host mounts it, and host moves are planned and made.
    from balancer.engine import PlanOptions, make_plan

    sim = start_vcsim(hosts=4, vms_per_host=2, datastores=2, disk_gb=2, stock_mounts=True)
    with sim.source() as src:
        snap = src.snapshot()
        assert snap.datastores and all(sorted(d.hosts) == sorted(h.name for h in snap.hosts) for d in snap.datastores)
        plan = make_plan(snap, PlanOptions(evacuate=(host_name(0),)))
        assert plan.status == "ok" and len(plan.moves) == 2, plan.conflicts
        assert all(not m.disks for m in plan.moves), "no disk needs to move: every host mounts the datastores"
        results = src.execute(plan.model_copy(update={"power": []}))
        after = src.snapshot()
    assert [r.outcome for r in results] == ["success", "success"]
    assert not [v for v in after.vms if v.host == host_name(0)]


def test_the_resource_pool_tree_shares_and_limits_are_collected(vcsim, admin):
    from pyVmomi import vim

    def alloc(level="normal", reservation=0, limit=-1, expandable=True, shares=0):
        return vim.ResourceAllocationInfo(reservation=reservation, limit=limit, expandableReservation=expandable,
                                          shares=vim.SharesInfo(level=level, shares=shares))

    root = admin.cluster.resourcePool
    prod = root.CreateResourcePool(name="prod", spec=vim.ResourceConfigSpec(
        cpuAllocation=alloc("high", reservation=2000), memoryAllocation=alloc("high", expandable=False, reservation=4096)))
    test = root.CreateResourcePool(name="test", spec=vim.ResourceConfigSpec(
        cpuAllocation=alloc("low", limit=3000), memoryAllocation=alloc("custom", shares=12345)))
    web = prod.CreateResourcePool(name="web", spec=vim.ResourceConfigSpec(cpuAllocation=alloc(),
                                                                            memoryAllocation=alloc()))
    vms = admin.vms()
    admin.wait(vms[vm_name(0)].RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=web)))
    admin.wait(vms[vm_name(1)].RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=test)))
    # a CPU limit of 1 MHz on vm 1: whatever its demand, it is collected at most at its limit
    admin.wait(vms[vm_name(1)].ReconfigVM_Task(spec=vim.vm.ConfigSpec(cpuAllocation=vim.ResourceAllocationInfo(
        limit=1, shares=vim.SharesInfo(level="high", shares=0)))))
    with vcsim.source() as src:
        snap = src.snapshot()
    pools = {p.name: p for p in snap.resource_pools}
    assert set(pools) == {"prod", "test", "web"} and pools["web"].parent == "prod" and pools["prod"].parent is None
    assert pools["prod"].cpu_shares.level == "high" and pools["prod"].cpu_reservation_mhz == 2000
    assert pools["prod"].mem_expandable is False and pools["prod"].mem_reservation_mb == 4096
    assert pools["test"].cpu_limit_mhz == 3000 and pools["test"].cpu_shares.level == "low"
    assert pools["test"].mem_shares.level == "custom" and pools["test"].mem_shares.value == 12345
    v0, v1, v2 = snap.vm(vm_name(0)), snap.vm(vm_name(1)), snap.vm(vm_name(2))
    assert v0.resource_pool == "web" and v1.resource_pool == "test" and v2.resource_pool is None
    assert v1.cpu_limit_mhz == 1 and v1.cpu_demand_mhz <= 1 and v1.cpu_shares.level == "high"
    assert v0.cpu_limit_mhz is None and v0.cpu_shares.level == "normal"


def test_per_host_dpm_overrides_are_collected(vcsim, admin):
    from pyVmomi import vim

    hosts = admin.hosts()
    spec = vim.cluster.ConfigSpecEx(dpmHostConfigSpec=[
        vim.cluster.DpmHostConfigSpec(operation="add", info=vim.cluster.DpmHostConfigInfo(
            key=hosts[host_name(0)], enabled=False)),
        vim.cluster.DpmHostConfigSpec(operation="add", info=vim.cluster.DpmHostConfigInfo(
            key=hosts[host_name(1)], enabled=True, behavior="manual"))])
    admin.reconfigure(spec)
    with vcsim.source() as src:
        snap = src.snapshot()
    assert snap.host(host_name(0)).dpm == "disabled"
    assert snap.host(host_name(1)).dpm == "manual"
    assert snap.host(host_name(2)).dpm == "default"


def test_how_a_host_can_be_woken_is_collected_and_dpm_never_strands_one_that_cannot_be(start_vcsim):
    from balancer.engine import PlanOptions, make_plan
    from balancer.engine.options import DpmOptions

    sim = start_vcsim(hosts=5, vms_per_host=1, host_wake=f"{host_name(0)}=wol,{host_name(1)}=ipmi,{host_name(2)}=none")
    with sim.source() as src:
        snap = src.snapshot()
    assert [snap.host(host_name(i)).wake for i in range(5)] == [True, True, False, True, True]
    plan = make_plan(snap, PlanOptions(dpm=DpmOptions(all_steps=True, min_hosts_on=1, headroom_hosts=0)))
    standby = {p.host for p in plan.power if p.action == "standby"}
    assert standby and host_name(2) not in standby, (standby, plan.notes)


def test_a_name_with_control_characters_is_escaped_as_vcenter_escapes_a_slash_and_the_vm_still_moves(start_vcsim):
    # vCenter gives "/" in a name as %2f; a line break or a bidirectional override in a name (what SOAP's XML
    # can carry: no ESC) is written the same way, so the snapshot's names stay one harmless line and the
    # executor still finds the VM by its name
    from balancer.engine import PlanOptions, make_plan

    sim = start_vcsim(hosts=3, vms_per_host=1)
    admin = sim.connect()
    try:
        admin.wait(admin.vms()[vm_name(0)].Rename_Task(newName="web\n01\u202e\t"))
    finally:
        admin.close()
    with sim.source() as src:
        snap = src.snapshot()
        vm = snap.vm("web%0a01%u202e%09")
        plan = make_plan(snap, PlanOptions(evacuate=(vm.host,)))
        assert [m.vm for m in plan.moves] == [vm.name]
        results = src.execute(plan.model_copy(update={"power": []}))
        assert [r.outcome for r in results] == ["success"]
        assert src.snapshot().vm(vm.name).host != vm.host
