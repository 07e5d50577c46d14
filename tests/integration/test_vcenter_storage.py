"""Storage DRS against the vCenter simulator over real SOAP: datastores and disks in the snapshot,
Storage vMotion by `apply`, a host move taking its disks along, the per-datastore limit, and
`evacuate-datastore` emptying a datastore and putting it into maintenance mode.

The simulator (tests/vcsim): 4 hosts, 2 VMs each, datastores LocalDS_0..2 of 100 GB in the storage
pod DC0_POD0 (LocalDS_2 mounted by the first two hosts only), every VM's 5 GB disk on LocalDS_0.
"""

from __future__ import annotations

import json

import pytest

from balancer.engine import PlanOptions, make_plan
from balancer.plan import CopyEstimate, DiskMove, Move, StorageMove
from balancer.snapshot import SNAPSHOT_VERSION, load_snapshot
from test_vcenter_cli import balancer, write_config
from vcsim_harness import host_name, vm_name

pytestmark = pytest.mark.integration

STORAGE = dict(hosts=4, vms_per_host=2, datastores=3, partial_datastores=1, pod=True, datastore_gb=100,
               datastore_free_gb=40, disk_gb=5)


@pytest.fixture
def sim(start_vcsim):
    return start_vcsim(**STORAGE)


def _move(snap, vm: str, target: str, step: int = 1, reason: str = "space") -> StorageMove:
    disks = snap.vm(vm).disks
    return StorageMove(step=step, vm=vm, reason=reason,
                       disks=[DiskMove(disk=d.name, source=d.datastore, target=target, size_gb=d.space_gb) for d in disks],
                       storage_vmotion=CopyEstimate(seconds=1.0, data_gb=sum(d.space_gb for d in disks)))


def test_the_snapshot_lists_the_simulator_s_datastores_and_disks(sim, tmp_path):
    config = write_config(sim, tmp_path / "vc.yaml")
    out = tmp_path / "s.json"
    proc = balancer("snapshot", "--config", config, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "3 datastores" in proc.stderr
    snap = load_snapshot(out)
    by_name = {d.name: d for d in snap.datastores}
    assert sorted(by_name) == ["LocalDS_0", "LocalDS_1", "LocalDS_2"]
    all_hosts = [host_name(i) for i in range(4)]
    for name, d in by_name.items():
        assert d.capacity_gb == pytest.approx(100.0) and d.free_gb == pytest.approx(40.0)
        assert d.datastore_cluster == "DC0_POD0" and d.state.value == "normal"
        assert sorted(d.hosts) == (all_hosts[:2] if name == "LocalDS_2" else all_hosts)
    assert len(snap.vms) == 8
    for v in snap.vms:
        [disk] = v.disks
        assert disk.datastore == "LocalDS_0" and disk.size_gb == pytest.approx(5.0) and disk.space_gb == pytest.approx(5.0)
    assert json.loads(out.read_text())["version"] == SNAPSHOT_VERSION


def test_apply_of_a_storage_move_lands_the_disk_on_the_target_datastore(sim, tmp_path):
    admin = sim.connect()
    config = write_config(sim, tmp_path / "vc.yaml")
    out = tmp_path / "s.json"
    assert balancer("snapshot", "--config", config, "--out", str(out)).returncode == 0
    snap = load_snapshot(out)
    vm = vm_name(0)
    plan = make_plan(snap, PlanOptions(max_moves=0, max_repair_moves=0)).model_copy(update={"storage_moves": [_move(snap, vm, "LocalDS_1")]})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json_dict()))
    proc = balancer("apply", str(path), "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    [res] = json.loads(proc.stdout)
    assert (res["kind"], res["action"], res["outcome"]) == ("storage", "LocalDS_0 -> LocalDS_1", "success")
    # in vCenter: the disk's backing is on LocalDS_1, the others' stay; the space moved with it
    disks = admin.disks()
    assert list(disks[vm].values()) == ["LocalDS_1"]
    assert all(list(d.values()) == ["LocalDS_0"] for name, d in disks.items() if name != vm)
    assert balancer("snapshot", "--config", config, "--out", str(out)).returncode == 0
    after = {d.name: d for d in load_snapshot(out).datastores}
    assert after["LocalDS_1"].free_gb == pytest.approx(35.0) and after["LocalDS_0"].free_gb == pytest.approx(45.0)
    [reloc] = sim.stats()["relocations"]
    assert reloc["datastore"] == "LocalDS_1" and reloc["disks"][0].endswith(":LocalDS_1") and reloc["target"] == ""
    # applied again: the disk is there already, which counts as done
    proc = balancer("apply", str(path), "--config", config, "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["outcome"] == "skipped"


def test_a_storage_move_to_a_datastore_the_vm_s_host_does_not_mount_is_skipped(sim):
    with sim.source() as src:
        snap = src.snapshot()
        vm = vm_name(3)  # on host 3, which does not mount LocalDS_2
        assert snap.vm(vm).host == host_name(3)
        [res] = src.execute(make_plan(snap, PlanOptions(max_moves=0, max_repair_moves=0)).model_copy(
            update={"storage_moves": [_move(snap, vm, "LocalDS_2")]}))
    assert res.outcome == "skipped" and f"not mounted by host {host_name(3)}" in res.message
    assert not sim.stats()["relocations"]


def test_a_host_move_takes_its_disks_along_in_one_relocation(sim):
    admin = sim.connect()
    with sim.source() as src:
        snap = src.snapshot()
        vm = vm_name(3)
        disk = snap.vm(vm).disks[0]
        # to host 1, with the disk going to LocalDS_2 (which host 1 mounts) in the same task
        move = Move(step=1, vm=vm, source=host_name(3), target=host_name(1), reason="balance",
                    disks=[DiskMove(disk=disk.name, source="LocalDS_0", target="LocalDS_2", size_gb=disk.space_gb)])
        [res] = src.execute(make_plan(snap, PlanOptions(max_moves=0, max_repair_moves=0)).model_copy(update={"moves": [move]}))
    assert res.outcome == "success", res.message
    assert admin.placement()[vm] == host_name(1) and list(admin.disks()[vm].values()) == ["LocalDS_2"]
    [reloc] = sim.stats()["relocations"]
    assert reloc["target"] == host_name(1) and reloc["datastore"] == "LocalDS_2"


def test_at_most_two_storage_vmotions_per_datastore_at_once(start_vcsim):
    sim = start_vcsim(**{**STORAGE, "relocate_task_ms": 300})
    with sim.source() as src:
        snap = src.snapshot()
        moves = [_move(snap, vm_name(i), "LocalDS_1", step=i + 1) for i in range(5)]
        results = src.execute(make_plan(snap, PlanOptions(max_moves=0, max_repair_moves=0)).model_copy(update={"storage_moves": moves}))
    assert [r.outcome for r in results] == ["success"] * 5
    relocs = sim.stats()["relocations"]
    assert len(relocs) == 5
    # at every relocation's start, how many were running (the log's own start and end times)
    most = max(sum(1 for o in relocs if o["start_ns"] <= r["start_ns"] < o["end_ns"]) for r in relocs)
    assert most == 2


def test_evacuate_datastore_empties_it_and_puts_it_into_maintenance(start_vcsim, tmp_path):
    sim = start_vcsim(**{**STORAGE, "datastore_free_gb": 50})  # room for the 40 GB of disks within 80 %
    admin = sim.connect()
    config = write_config(sim, tmp_path / "vc.yaml")
    proc = balancer("evacuate-datastore", "LocalDS_0", "--config", config, "--execute", "--format", "json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads(proc.stdout)
    assert data["results"][-1]["kind"] == "datastore" and data["results"][-1]["outcome"] == "success"
    disks = admin.disks()
    assert all("LocalDS_0" not in d.values() for d in disks.values())
    placement = admin.placement()
    for vm, d in disks.items():  # every disk on a datastore its VM's host mounts
        if "LocalDS_2" in d.values():
            assert placement[vm] in (host_name(0), host_name(1))
    assert admin.datastore_mode("LocalDS_0") == "inMaintenance"
    # the journal has it, as a one-off cycle
    hist = json.loads(balancer("history", "--config", config, "--format", "json").stdout)
    assert hist[-1]["kind"] == "evacuate-datastore"
    assert hist[-1]["actions"][-1]["kind"] == "datastore" and hist[-1]["actions"][-1]["state"] == "success"
    # and back out of maintenance (DatastoreExitMaintenanceMode_Task), journaled too
    proc = balancer("exit-maintenance", "LocalDS_0", "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert [(r["kind"], r["action"], r["outcome"]) for r in json.loads(proc.stdout)] == \
        [("datastore", "exit-maintenance", "success")]
    assert admin.datastore_mode("LocalDS_0") == "normal"
    hist = json.loads(balancer("history", "--config", config, "--format", "json").stdout)
    assert hist[-1]["kind"] == "exit-maintenance" and hist[-1]["actions"][-1]["state"] == "success"
    proc = balancer("exit-maintenance", "LocalDS_0", "--config", config)
    assert proc.returncode == 2 and "datastore LocalDS_0 is not in maintenance" in proc.stderr


def test_evacuate_datastore_refuses_when_there_is_no_room(start_vcsim, tmp_path):
    sim = start_vcsim(**{**STORAGE, "datastore_free_gb": 6})  # 8 disks of 5 GB, 6 GB free on each other datastore
    config = write_config(sim, tmp_path / "vc.yaml")
    proc = balancer("evacuate-datastore", "LocalDS_0", "--config", config)
    assert proc.returncode == 3, proc.stderr
    # the cause in totals: 8 disks of 5 GB, and 6 GB free on each other datastore is above their 80 % threshold
    assert ("cannot evacuate datastore LocalDS_0: its 8 disks take 40 GB and the other datastores have 0 GB below "
            "their space threshold: 8 VMs whose disks find no room") in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.strip().splitlines() if not line.startswith("warning:")]) == 1
