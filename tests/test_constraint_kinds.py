"""The constraint registry (engine/compute/constraints/): a kind registered with one line is honoured by
every planner -- cp-sat and greedy at every threshold, under a budget, DPM, evacuation -- and by the
replay that checks a plan before it is carried out; its violations are named in its own words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.cluster import build_cluster
from balancer.engine.compute.placement import place_vm
from balancer.engine.compute.constraints import KINDS, HostSet, Index, register, unregister
from balancer.engine.options import DpmOptions
from balancer.errors import InputError
from balancer.checks.replay import check_plan_steps
from balancer.plan import Imbalance, Plan, ResourcePair
from balancer.snapshot import parse_snapshot
from balancer.snapshot.vmspec import VmSpec
from helpers import plan_actions


@dataclass(frozen=True)
class GpuHostsOnlyForGpuVms(HostSet):
    """A toy kind: hosts named gpu-* run only VMs named gpu-* (mandatory)."""

    kind = "toy-gpu-hosts"

    @classmethod
    def compile(cls, snapshot, index: Index):
        gpu = index.host_mask(h.name for h in snapshot.hosts if h.name.startswith("gpu-"))
        others = index.vm_array(v.name for v in snapshot.vms if not v.name.startswith("gpu-"))
        return [cls("gpu-hosts", others, True, ~gpu)] if gpu.any() and len(others) else []

    def where(self) -> str:
        return "off the GPU hosts"


@pytest.fixture
def toy():
    register(GpuHostsOnlyForGpuVms)
    yield GpuHostsOnlyForGpuVms
    unregister(GpuHostsOnlyForGpuVms)
    assert GpuHostsOnlyForGpuVms not in KINDS


def snapshot():
    """a and b are busy; gpu-1 is nearly empty (balance would fill it) and runs one plain VM."""
    hosts = [{"name": n, "cpu_capacity_mhz": 20000, "mem_capacity_mb": 65536, "state": "on"}
             for n in ("a", "b", "c", "gpu-1")]
    vms = [{"name": f"app{i}", "host": "a" if i < 9 else "b" if i < 16 else "c", "vcpus": 2, "mem_mb": 4096,
            "cpu_demand_mhz": 1800.0, "mem_demand_mb": 2048.0} for i in range(18)]
    vms += [{"name": "gpu-train", "host": "gpu-1", "vcpus": 4, "mem_mb": 8192, "cpu_demand_mhz": 1000.0,
             "mem_demand_mb": 4096.0},
            {"name": "web", "host": "gpu-1", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 500.0, "mem_demand_mb": 1024.0}]
    return parse_snapshot({"version": 4, "cluster": "t", "hosts": hosts, "vms": vms})


OPTIONS = [PlanOptions(threshold=t, planner=p, time_limit_s=0.5) for t in (1, 3, 5) for p in ("cp-sat", "greedy")] + [
    PlanOptions(threshold=5, max_moves=2, time_limit_s=0.5),
    PlanOptions(threshold=3, dpm=DpmOptions(min_hosts_on=1), time_limit_s=0.5),
    PlanOptions(threshold=3, evacuate=("c",), time_limit_s=0.5),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o.planner}-t{o.threshold}-{o.max_moves}-"
                         f"{'dpm' if o.dpm else ''}{'-'.join(o.evacuate)}")
def test_every_planner_honours_a_registered_kind(toy, options):
    snap = snapshot()
    plan = make_plan(snap, options)
    assert plan.moves and not [m for m in plan.moves if m.target == "gpu-1"], plan.moves  # nothing lands there
    assert any(v.name == "gpu-hosts" and v.mandatory and "web on gpu-1" in v.detail for v in plan.violations_before)
    if options.evacuate:  # an evacuation moves only what leaves the host (the rule stays broken, and is named)
        assert all(m.source == "c" for m in plan.moves)
        return
    web = next(m for m in plan.moves if m.vm == "web")  # the plain VM is repaired off
    assert web.reason == "rule" and web.mandatory and "belongs off the GPU hosts" in web.detail
    assert not any(v.name == "gpu-hosts" for v in plan.violations_after)


def test_without_the_kind_the_gpu_host_is_just_a_host():
    snap = snapshot()
    plan = make_plan(snap, PlanOptions(threshold=5, time_limit_s=0.5))
    assert any(m.target == "gpu-1" for m in plan.moves)  # so the test above can fail
    assert not any(v.name == "gpu-hosts" for v in plan.violations_before)


def test_the_replay_refuses_a_plan_that_breaks_a_registered_kind(toy):
    snap = snapshot()
    zero = ResourcePair(cpu=0.0, mem=0.0)
    plan = Plan(cluster="t", snapshot_digest="x", imbalance=Imbalance(before=zero, after=zero),
                **plan_actions(("app0", "a", "gpu-1")))
    with pytest.raises(InputError, match="breaks the mandatory rule gpu-hosts .app0 must run off the GPU hosts"):
        check_plan_steps(snap, plan, PlanOptions())


def test_placement_honours_a_registered_kind(toy):
    snap = snapshot()
    plain = place_vm(snap, VmSpec(name="new-app", vcpus=2, mem_mb=4096, cpu_demand_mhz=500.0))
    gpu = place_vm(snap, VmSpec(name="gpu-new", vcpus=2, mem_mb=4096, cpu_demand_mhz=500.0))
    assert "gpu-1" not in [c.host for c in plain.hosts]
    assert {r.host: r.why for r in plain.rejected}["gpu-1"] == "rule gpu-hosts: must run off the GPU hosts"
    assert gpu.hosts[0].host == "gpu-1"  # the emptiest host, for the VM the rule lets on it


def test_the_kind_compiles_into_the_allowed_mask(toy):
    c = build_cluster(snapshot(), PlanOptions())
    gpu = c.host_index("gpu-1")
    assert not c.allowed[c.vm_index("app0"), gpu] and c.allowed[c.vm_index("gpu-train"), gpu]
    assert [g.kind for g in c.rules] == ["toy-gpu-hosts"] and np.array_equal(c.host_sets[0].ok, ~(np.arange(4) == gpu))
