"""The executor against the vCenter simulator: plans land, limits hold, stale and failing actions are contained."""

from __future__ import annotations

import pytest

from balancer.plan import Imbalance, Plan, ResourcePair, VMotionEstimate
from balancer.snapshot import HostState
from balancer.sources.vcenter import VCenterSource
from balancer.sources.vcenter.executor import Executor
from helpers import plan_actions
from vcsim_harness import CLUSTER, host_name, max_overlap, vm_name, wait_until

pytestmark = pytest.mark.integration


def make_plan(*actions) -> Plan:
    zero = ResourcePair(cpu=0.0, mem=0.0)
    return Plan(cluster=CLUSTER, snapshot_digest="test", imbalance=Imbalance(before=zero, after=zero),
                **plan_actions(*actions))


def outcomes(results) -> dict[int, str]:
    return {r.step: r.outcome for r in results}


def test_applied_plan_lands(vcsim, admin):
    # 4 hosts, VM i on host i % 4
    plan = make_plan(
        (vm_name(0), host_name(0), host_name(1)),
        (vm_name(4), host_name(0), host_name(2)),
        (vm_name(1), host_name(1), host_name(3)),
        (vm_name(8), host_name(0), host_name(1)),
    )
    with vcsim.source() as src:
        results = src.execute(plan)
        snap = src.snapshot()
    assert outcomes(results) == {1: "success", 2: "success", 3: "success", 4: "success"}
    assert all(r.kind == "move" and r.seconds >= 0 and r.message == "" for r in results)
    placement = admin.placement()
    assert placement[vm_name(0)] == host_name(1) and placement[vm_name(4)] == host_name(2)
    assert placement[vm_name(1)] == host_name(3) and placement[vm_name(8)] == host_name(1)
    assert {v.name: v.host for v in snap.vms} == placement
    assert sum(1 for h in placement.values() if h == host_name(0)) == 0


def test_concurrency_limits_are_respected(start_vcsim):
    # Every RelocateVM_Task takes 300 ms in the simulator; the launcher logs when each one runs.
    sim = start_vcsim(hosts=4, vms_per_host=4, relocate_ms=300)
    moves = []
    for i in range(16):
        if i % 4 in (0, 1):  # the 8 VMs of hosts 0 and 1 go to hosts 2 and 3
            moves.append((vm_name(i), host_name(i % 4), host_name(2 + (i // 4) % 2)))
    plan = make_plan(*moves)
    with sim.source(max_vmotions_per_host=2, max_vmotions_per_cluster=3) as src:
        sim.reset()
        results = src.execute(plan)
    assert [r.outcome for r in results] == ["success"] * 8

    relocations = sim.stats()["relocations"]
    assert len(relocations) == 8
    per_host: dict[str, list] = {}
    for r in relocations:
        for h in (r["source"], r["target"]):
            per_host.setdefault(h, []).append((r["start_ns"], r["end_ns"]))
    overall = max_overlap([(r["start_ns"], r["end_ns"]) for r in relocations])
    assert overall <= 3
    assert overall >= 2, "moves on different hosts should have run concurrently"
    assert max(max_overlap(iv) for iv in per_host.values()) <= 2


def test_moves_wait_for_earlier_moves_freeing_their_target(start_vcsim):
    sim = start_vcsim(hosts=3, vms_per_host=2, relocate_ms=200)
    # step 2 moves onto host 0, which step 1 empties first: step 2 must start after step 1 ended.
    plan = make_plan(
        (vm_name(0), host_name(0), host_name(2)),
        (vm_name(1), host_name(1), host_name(0)),
    )
    with sim.source() as src:
        sim.reset()
        results = src.execute(plan)
    assert outcomes(results) == {1: "success", 2: "success"}
    log = {r["vm"]: r for r in sim.stats()["relocations"]}
    assert log[vm_name(1)]["start_ns"] >= log[vm_name(0)]["end_ns"]


def test_stale_plan_moves_are_skipped(vcsim, admin):
    plan = make_plan(
        (vm_name(0), host_name(0), host_name(1)),
        (vm_name(5), host_name(1), host_name(2)),
        (vm_name(2), host_name(2), host_name(3)),
        (vm_name(6), host_name(2), host_name(3)),
    )
    with vcsim.source() as src:
        admin.relocate(vm_name(0), host_name(3))  # someone moved it after the plan was made
        admin.destroy_vm(vm_name(5))  # and deleted another VM
        admin.wait(admin.hosts()[host_name(3)].EnterMaintenanceMode_Task(timeout=0))  # target left service
        results = src.execute(plan)
    by_step = {r.step: r for r in results}
    assert by_step[1].outcome == "skipped" and f"is on {host_name(3)}, not on {host_name(0)}" in by_step[1].message
    assert by_step[2].outcome == "skipped" and "no longer exists" in by_step[2].message
    assert by_step[3].outcome == "skipped" and f"host {host_name(3)} is in maintenance" in by_step[3].message
    assert by_step[4].outcome == "skipped"
    assert admin.placement()[vm_name(0)] == host_name(3)
    assert admin.placement()[vm_name(2)] == host_name(2)


def test_failing_tasks_fail_cleanly_and_others_still_run(vcsim, admin):
    class DeletingExecutor(Executor):
        """Deletes the VM of step 2 after its premise was checked: the relocation then hits a VM that is gone."""

        def before_action(self, action):
            if action.step == 2:
                admin.destroy_vm(action.vm)

    class Source(VCenterSource):
        def _make_executor(self):
            return DeletingExecutor(self.conn, self.collector, self.drs, timeout=self.vc.timeout)

    plan = make_plan(
        (vm_name(0), host_name(0), host_name(1)),
        (vm_name(4), host_name(0), host_name(2)),
        (vm_name(1), host_name(1), host_name(3)),
        (vm_name(2), host_name(2), host_name(3)),
    )
    vcsim.fail_relocate(vm_name(1))  # the simulator answers step 3 with a task error
    from balancer.config import DrsConfig

    src = Source(vcsim.config(), DrsConfig())
    try:
        results = src.execute(plan)
    finally:
        src.close()
    by_step = {r.step: r for r in results}
    assert by_step[2].outcome == "failed" and "no longer exists" in by_step[2].message
    assert by_step[3].outcome == "failed" and "InsufficientResourcesFault" in by_step[3].message
    assert by_step[1].outcome == "success" and by_step[4].outcome == "success"
    placement = admin.placement()
    assert vm_name(4) not in placement
    assert placement[vm_name(0)] == host_name(1) and placement[vm_name(2)] == host_name(3)
    assert placement[vm_name(1)] == host_name(1)  # the failed move left it where it was


def test_after_three_failures_the_rest_is_skipped(vcsim, admin):
    vms = [0, 1, 4, 5, 8, 9]  # on hosts 0 and 1, moving to hosts 2 and 3: no move depends on another
    plan = make_plan(*[(vm_name(i), host_name(i % 4), host_name(2 + i % 2)) for i in vms])
    for i in vms[:3]:
        vcsim.fail_relocate(vm_name(i))
    with vcsim.source(max_vmotions_per_cluster=1) as src:
        results = src.execute(plan)
    assert [r.outcome for r in results] == ["failed"] * 3 + ["skipped"] * 3
    assert all("3 actions failed" in r.message for r in results[3:])
    assert all(admin.placement()[vm_name(i)] == host_name(i % 4) for i in vms)


def test_vcenter_going_away_mid_plan_fails_actions_without_crashing(vcsim):
    class StoppingExecutor(Executor):
        def before_action(self, action):
            if action.step == 2:
                vcsim.stop()

    class Source(VCenterSource):
        def _make_executor(self):
            return StoppingExecutor(self.conn, self.collector, self.drs, timeout=self.vc.timeout)

    plan = make_plan(*[(vm_name(i), host_name(0), host_name(1)) for i in (0, 4, 8)],
                     (host_name(2), "enter-maintenance"))
    from balancer.config import DrsConfig

    src = Source(vcsim.config(), DrsConfig(max_vmotions_per_cluster=1))
    results = src.execute(plan)
    src.close()
    assert [r.step for r in results] == [1, 2, 3, 4]
    assert results[0].outcome == "success"
    assert {r.outcome for r in results[1:]} <= {"failed", "skipped"}
    assert results[1].outcome == "failed" and results[1].message
    assert all("\n" not in r.message for r in results)


def test_standby_and_power_on_reach_the_simulator(vcsim, admin):
    evacuate = [(vm_name(i), host_name(3), host_name(i % 3)) for i in (3, 7, 11)]
    with vcsim.source() as src:
        results = src.execute(make_plan(*evacuate, (host_name(3), "standby")))
        assert [r.outcome for r in results] == ["success"] * 4
        assert results[3].kind == "power" and results[3].action == "standby"
        assert admin.host_power_state(host_name(3)) == "standBy"
        assert src.snapshot().host(host_name(3)).state is HostState.STANDBY

        # standby of a host that still runs VMs is refused before vCenter is asked
        again = src.execute(make_plan((host_name(2), "standby")))
        assert again[0].outcome == "skipped" and "still runs" in again[0].message
        assert admin.host_power_state(host_name(2)) == "poweredOn"

        results = src.execute(make_plan((host_name(3), "power-on"), (vm_name(0), host_name(0), host_name(3))))
        assert [r.outcome for r in results] == ["success", "success"]
        assert admin.host_power_state(host_name(3)) == "poweredOn"
        assert admin.placement()[vm_name(0)] == host_name(3)

        # maintenance of a host that still runs VMs is refused: the balancer moves them off first
        results = src.execute(make_plan((host_name(1), "enter-maintenance")))
        assert results[0].outcome == "skipped" and "still runs" in results[0].message
        on_1 = [vm for vm, h in admin.placement().items() if h == host_name(1)]
        results = src.execute(make_plan(*[(vm, host_name(1), host_name(2)) for vm in on_1],
                                        (host_name(1), "enter-maintenance")))
        assert [r.outcome for r in results] == ["success"] * (len(on_1) + 1)
        assert src.snapshot().host(host_name(1)).state is HostState.MAINTENANCE
        results = src.execute(make_plan((host_name(1), "exit-maintenance"), (host_name(1), "power-on")))
        assert [r.outcome for r in results] == ["success", "skipped"]
        assert "is already on (done before)" in results[1].message
        assert src.snapshot().host(host_name(1)).state is HostState.ON


def test_a_move_needing_a_failed_move_is_skipped(vcsim, admin):
    # step 2 moves onto host 0, counting on step 1 to have emptied room there; step 1 fails.
    plan = make_plan(
        (vm_name(0), host_name(0), host_name(2)),
        (vm_name(1), host_name(1), host_name(0)),
        (vm_name(3), host_name(3), host_name(2)),
    )
    vcsim.fail_relocate(vm_name(0))
    with vcsim.source() as src:
        results = src.execute(plan)
    assert [r.outcome for r in results] == ["failed", "skipped", "success"]
    assert "step 1, which it depends on, failed" in results[1].message
    assert admin.placement()[vm_name(1)] == host_name(1)


def test_recent_tasks_name_the_vmotions_vcenter_is_carrying_out_and_how_they_ended(vcsim, admin):
    from pyVmomi import vim

    vcsim.hold()  # the relocations' tasks run until released, the VMs on their hosts meanwhile
    vms, hosts = admin.vms(), admin.hosts()
    first = vms[vm_name(0)].RelocateVM_Task(spec=vim.vm.RelocateSpec(host=hosts[host_name(1)]))
    with vcsim.source() as src:
        (running,) = src.recent_tasks()
        assert (running.subject, running.action, running.name) == (vm_name(0), "relocate", "RelocateVM_Task")
        assert running.active and running.key == first._moId and running.error == ""
        assert src.snapshot().vms_by_name()[vm_name(0)].host == host_name(0)
        vcsim.release()
        admin.wait(first)
        (done,) = src.recent_tasks()  # ended lately: still listed, with its outcome
        assert (done.key, done.state, done.active) == (first._moId, "success", False)

        vcsim.hold()
        second = vms[vm_name(1)].RelocateVM_Task(spec=vim.vm.RelocateSpec(host=hosts[host_name(0)]))
        vcsim.release(fail=True)
        with pytest.raises(vim.fault.InsufficientResourcesFault):
            admin.wait(second)
        failed = next(t for t in src.recent_tasks() if t.key == second._moId)
        assert (failed.subject, failed.state, failed.error) == (vm_name(1), "error", "InsufficientResourcesFault")
    assert admin.placement()[vm_name(0)] == host_name(1) and admin.placement()[vm_name(1)] == host_name(1)


def test_a_request_that_outlasts_the_timeout_fails(start_vcsim):
    # the RelocateVM_Task call itself hangs: the HTTP request's vcenter.timeout ends it
    sim = start_vcsim(hosts=2, vms_per_host=1, relocate_ms=2500)
    from balancer.config import DrsConfig

    src = VCenterSource(sim.config(timeout="1s"), DrsConfig())
    try:
        results = src.execute(make_plan((vm_name(0), host_name(0), host_name(1))))
    finally:
        src.close()
    assert results[0].outcome == "failed" and "timed out" in results[0].message


def _predicted(plan: Plan, seconds: float) -> Plan:
    """The plan with every move's vMotion predicted to take ``seconds``."""
    est = VMotionEstimate(seconds=seconds, downtime_ms=100.0, data_mb=1000.0)
    return plan.model_copy(update={"moves": [m.model_copy(update={"vmotion": est}) for m in plan.moves]})


def test_a_vmotion_longer_than_the_timeout_but_within_its_predicted_deadline_succeeds(start_vcsim):
    # each vMotion task runs 2.5 s; vcenter.timeout is 1 s, but the move's deadline is 3 x 1 s + 60 s
    sim = start_vcsim(hosts=2, vms_per_host=1, relocate_task_ms=2500)
    from balancer.config import DrsConfig

    src = VCenterSource(sim.config(timeout="1s"), DrsConfig())
    try:
        results = src.execute(_predicted(make_plan((vm_name(0), host_name(0), host_name(1))), 1.0))
    finally:
        src.close()
    assert results[0].outcome == "success", results[0].message
    admin = sim.connect()
    try:
        assert admin.placement()[vm_name(0)] == host_name(1)
    finally:
        admin.close()


def test_a_vmotion_past_its_deadline_has_its_tasks_outcome(start_vcsim):
    """Past its deadline a vMotion is asked to cancel and still waited for: its outcome is vCenter's
    task's -- success when the cancel is not honoured, cancelled when it is."""
    # no prediction (a hand-written plan): the deadline is vcenter.timeout, shorter than the task
    sim = start_vcsim(hosts=2, vms_per_host=2, relocate_task_ms=2500)
    from balancer.config import DrsConfig

    src = VCenterSource(sim.config(timeout="1s"), DrsConfig())
    cancels: list[int] = []
    src.execution_hooks().cancel_requested = lambda a, message: cancels.append(a.step)
    try:
        results = src.execute(make_plan((vm_name(0), host_name(0), host_name(1))))
        assert results[0].outcome == "success"  # the simulator has no CancelTask: the task went on
        assert "did not honour the cancel" in results[0].message and cancels == [1]
        sim.hold(cancel=True)  # now a held task honours CancelTask
        results = src.execute(make_plan((vm_name(1), host_name(1), host_name(0))))
        assert results[0].outcome == "cancelled" and cancels == [1, 1]
    finally:
        src.close()
        sim.release()
    admin = sim.connect()
    try:
        assert admin.placement()[vm_name(0)] == host_name(1)
        assert admin.placement()[vm_name(1)] == host_name(1)  # cancelled: where it was
    finally:
        admin.close()
    logged = sim.stats()["relocations"]
    assert [(r["vm"], r["failed"], r.get("cancelled", False)) for r in logged] == \
        [(vm_name(0), False, False), (vm_name(1), True, True)]


def test_a_vmotion_whose_reply_is_lost_is_found_among_vcenters_tasks_and_has_its_outcome(start_vcsim):
    """vCenter starts the relocation but its reply never arrives (the connection closes): the action is
    not taken for failed; vCenter's running task of the VM is the action's, waited for to its end."""
    import threading

    sim = start_vcsim(hosts=2, vms_per_host=2)
    sim.hold()  # the task keeps running until released, as a vMotion in progress
    sim.drop_reply(1)
    src = sim.source()
    out: list = []
    try:
        worker = threading.Thread(target=lambda: out.extend(src.execute(make_plan((vm_name(0), host_name(0), host_name(1))))))
        worker.start()
        assert wait_until(lambda: sim.stats()["methods"].get("RelocateVM_Task", 0) == 1, timeout=30)
        sim.release()
        worker.join(60)
    finally:
        src.close()
    assert [r.outcome for r in out] == ["success"], out
    admin = sim.connect()
    try:
        assert admin.placement()[vm_name(0)] == host_name(1)
    finally:
        admin.close()
    assert sim.stats()["methods"]["RelocateVM_Task"] == 1, "one vMotion: the action's own, not a second"


@pytest.mark.parametrize("fail", [False, True], ids=["moved", "failed"])
def test_a_vmotion_whose_reply_is_lost_after_it_ended_has_vcenters_outcome(start_vcsim, fail):
    """The reply is lost and the relocation has already ended when the executor looks: the task vCenter
    queued after the call (by its own clock) is the action's, and its outcome is the action's — the VM
    moved (success) or vCenter's own task error — never "failed: connection lost"."""
    sim = start_vcsim(hosts=2, vms_per_host=2)
    if fail:
        sim.fail_relocate(vm_name(0))
    sim.drop_reply(1)
    with sim.source() as src:
        out = src.execute(make_plan((vm_name(0), host_name(0), host_name(1))))
    assert [r.outcome for r in out] == ["failed" if fail else "success"], out
    if fail:
        assert "connection" not in out[0].message.lower() and "Fault" in out[0].message, out[0].message
    admin = sim.connect()
    try:
        assert admin.placement()[vm_name(0)] == host_name(0 if fail else 1)
    finally:
        admin.close()
    assert sim.stats()["methods"]["RelocateVM_Task"] == 1, "one vMotion: the action's own, not a second"


def test_moves_keep_the_vms_resource_pool(vcsim, admin):
    """A vMotion inside the cluster never takes a VM out of its child resource pool."""
    from pyVmomi import vim

    alloc = vim.ResourceAllocationInfo(reservation=0, limit=-1, expandableReservation=True,
                                       shares=vim.SharesInfo(level="high", shares=0))
    spec = vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc)
    pool = admin.cluster.resourcePool.CreateResourcePool(name="prod-rp", spec=spec)
    vms = admin.vms()
    for name in (vm_name(0), vm_name(1)):  # the simulator has no MoveIntoResourcePool
        admin.wait(vms[name].RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=pool)))
        assert admin.props(vms[name], "resourcePool")["resourcePool"]._GetMoId() == pool._GetMoId()
    plan = make_plan((vm_name(0), host_name(0), host_name(2)), (vm_name(1), host_name(1), host_name(2)))
    with vcsim.source() as src:
        results = src.execute(plan)
    assert outcomes(results) == {1: "success", 2: "success"}
    assert admin.placement()[vm_name(0)] == host_name(2)
    for name in (vm_name(0), vm_name(1)):
        assert admin.props(admin.vms()[name], "resourcePool")["resourcePool"]._GetMoId() == pool._GetMoId()
    assert admin.props(admin.vms()[vm_name(2)], "resourcePool")["resourcePool"]._GetMoId() \
        == admin.cluster.resourcePool._GetMoId()
