"""The premise of each step of a plan being carried out (checks/premise.step_premise) on a fresh read
(sources/vcenter/executor.FreshReads): a step starts only on a read no older than the freshness limit,
taken after the last action ended, where its VM is on its source and its target is on with room."""

from balancer.checks.premise import step_premise
from balancer.plan import Move
from balancer.snapshot import parse_snapshot
from balancer.sources.vcenter.executor import FreshReads


def snap(b_state="on", b_cpu=10000.0, b_load=0.0, where="a"):
    hosts = [{"name": "a", "cpu_capacity_mhz": 10000, "mem_capacity_mb": 8192, "state": "on"},
             {"name": "b", "cpu_capacity_mhz": b_cpu, "mem_capacity_mb": 8192, "state": b_state}]
    vms = [{"name": "v", "host": where, "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 3000, "mem_demand_mb": 2048}]
    if b_load:
        vms.append({"name": "w", "host": "b", "vcpus": 2, "mem_mb": 8192, "cpu_demand_mhz": b_load, "mem_demand_mb": 7000})
    return parse_snapshot({"version": 5, "cluster": "c", "hosts": hosts, "vms": vms})


MOVE = Move(step=1, vm="v", source="a", target="b", reason="balance")


def test_a_step_starts_only_on_a_fresh_read_where_its_premise_holds():
    assert step_premise(snap(), MOVE, age=5.0, limit=60.0) is None
    assert step_premise(snap(), MOVE, age=61.0, limit=60.0) == "the cluster's last read is 61 s old (limit 60 s)"
    assert "v" in (step_premise(snap(where="b"), MOVE, 5.0, 60.0) or "")  # the VM is no longer on its source
    assert step_premise(snap(b_state="maintenance"), MOVE, 5.0, 60.0) is not None
    assert step_premise(snap(b_load=8000.0), MOVE, 5.0, 60.0) == \
        "host b has no room for VM v now: memory 9048 of 8192 MB with it"


def test_fresh_reads_are_shared_until_an_action_ends_or_the_limit_passes():
    now = [0.0]
    reads = []

    def read():
        reads.append(now[0])
        return snap()

    fresh = FreshReads(read, limit=60.0, clock=lambda: now[0])
    fresh.get()
    now[0] = 30.0
    assert fresh.get()[1] == 30.0 and len(reads) == 1  # steps starting together share one read
    fresh.changed()  # an action ended: the next step reads again
    assert fresh.get()[1] == 0.0 and len(reads) == 2
    now[0] = 100.0  # older than the limit: read again
    fresh.get()
    assert reads == [0.0, 30.0, 100.0]
