"""Where a repair or an evacuation sends a VM: a host with room for its configured CPU (a burst) first.

A VM idle for hours is planned at its recent demand, but may ask for all its vCPUs at once. Of the
hosts a VM may go to within their limits, the repair prefers one where the VM's configured CPU
(vCPUs x the host's MHz per core, within the VM's own CPU limit) still fits within the host's
capacity; only then the emptiest (engine/compute/repair.py, Repairer._choose).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.cluster import CPU, build_cluster
from balancer.engine.compute.repair import repair
from balancer.snapshot import parse_snapshot

PROPS = settings(max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 12)) * 4, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


def host(name, cores, mhz, mem=1_048_576, state="on", with_cores=True):
    h = {"name": name, "cpu_capacity_mhz": cores * mhz, "mem_capacity_mb": mem, "state": state}
    if with_cores:
        h |= {"cpu_cores": cores, "cpu_threads": 2 * cores}
    return h


def vm(name, on, vcpus, cpu, mem=8192, **kw):
    return {"name": name, "host": on, "vcpus": vcpus, "mem_mb": mem, "cpu_demand_mhz": cpu, "mem_demand_mb": mem / 2, **kw}


def _evacuation(with_cores=True, **big):
    """A host in maintenance holds an idle 16-vCPU VM. ``small`` (32 x 2,200 MHz) is the emptier, but 40 GHz
    busy: the VM's 35.2 GHz there would not fit; ``large`` (64 x 2,600 MHz) is fuller, with room for its 41.6 GHz."""
    return parse_snapshot({"version": 6, "cluster": "t", "hosts": [
        host("small", 32, 2200, 524_288, with_cores=with_cores),
        host("large", 64, 2600, 1_048_576, with_cores=with_cores),
        host("leaving", 32, 2200, 524_288, state="maintenance", with_cores=with_cores)],
        "vms": [vm("busy-s", "small", 32, 40_000, 65536), vm("busy-l", "large", 64, 100_000, 131072),
                vm("big", "leaving", 16, 400, 32768, **big)]})


def test_an_evacuated_vm_goes_where_its_configured_cpu_fits():
    s = _evacuation()
    for planner in ("cp-sat", "greedy"):
        plan = make_plan(s, PlanOptions(planner=planner))
        assert [(m.vm, m.target) for m in plan.moves] == [("big", "large")], planner


def test_without_the_hosts_cores_the_emptiest_host_is_taken():
    plan = make_plan(_evacuation(with_cores=False), PlanOptions())
    assert [(m.vm, m.target) for m in plan.moves] == [("big", "small")]


def test_a_vm_s_own_cpu_limit_bounds_its_burst():
    # limited to 20 GHz, the VM's burst fits on the emptier host
    plan = make_plan(_evacuation(cpu_limit_mhz=20_000), PlanOptions())
    assert [(m.vm, m.target) for m in plan.moves] == [("big", "small")]


def test_a_powered_off_vm_asks_for_nothing():
    on = build_cluster(_evacuation(), PlanOptions())
    big = on.vm_index("big")
    assert on.cpu_burst(np.array([big]), np.arange(3)).tolist() == [35_200 - 400, 41_600 - 400, 35_200 - 400]
    off = build_cluster(_evacuation(powered_on=False), PlanOptions())
    assert off.cpu_burst(np.array([big]), np.arange(3)).tolist() == [0.0, 0.0, 0.0]


def test_a_host_whose_cores_are_not_known_is_not_taken_for_room():
    # the small host gives no cores: room for the burst is known only on the large one
    data = _evacuation().model_dump(mode="json", exclude_none=True)
    for h in data["hosts"]:
        if h["name"] == "small":
            del h["cpu_cores"], h["cpu_threads"]
    plan = make_plan(parse_snapshot(data), PlanOptions())
    assert [(m.vm, m.target) for m in plan.moves] == [("big", "large")]


def test_a_unit_needs_room_for_the_bursts_of_all_its_members():
    # two idle 8-vCPU VMs that must run together: 2 x 17.6 GHz fit on the large host only
    s = parse_snapshot({"version": 6, "cluster": "t", "hosts": [
        host("small", 32, 2200, 524_288), host("large", 64, 2600, 1_048_576),
        host("leaving", 32, 2200, 524_288, state="maintenance")],
        "vms": [vm("busy-s", "small", 32, 40_000, 65536), vm("busy-l", "large", 64, 100_000, 131072),
                vm("a", "leaving", 8, 300), vm("b", "leaving", 8, 300)],
        "rules": [{"name": "pair", "type": "vm-affinity", "mandatory": True, "vms": ["a", "b"]}]})
    c = build_cluster(s, PlanOptions())
    assert 40_000 + 600 + 8 * 2200 <= 70_400 < 40_000 + 600 + 2 * (8 * 2200 - 300)  # one burst fits, two do not
    rep = repair(c)
    assert [c.host_names[h] for h in rep.place[[c.vm_index("a"), c.vm_index("b")]]] == ["large", "large"]


@st.composite
def evacuations(draw):
    """Hosts of random sizes and loads, one in maintenance with one VM of random vCPUs on it."""
    n = draw(st.integers(2, 7))
    hosts, vms = [], []
    for i in range(n):
        cores = draw(st.sampled_from([8, 16, 24, 32, 48, 64]))
        mhz = draw(st.sampled_from([2000, 2200, 2600, 3000]))
        hosts.append(host(f"h{i}", cores, mhz, 262_144))
        busy = draw(st.floats(0.0, 0.95))
        if busy > 0.01:
            vms.append(vm(f"load{i}", f"h{i}", cores, round(busy * cores * mhz), 16384))
    hosts.append(host("leaving", 16, 2400, 262_144, state="maintenance"))
    limit = draw(st.one_of(st.none(), st.integers(1000, 80_000)))
    vcpus = draw(st.integers(1, 32))
    demand = draw(st.integers(0, 4000))
    if limit is not None:
        demand = min(demand, limit)
    vms.append(vm("vm", "leaving", vcpus, demand, 8192, **({} if limit is None else {"cpu_limit_mhz": limit})))
    return parse_snapshot({"version": 6, "cluster": "t", "hosts": hosts, "vms": vms})


@PROPS
@given(evacuations())
def test_the_repair_prefers_a_host_with_room_for_the_burst_whenever_one_may_take_the_vm(s):
    c = build_cluster(s, PlanOptions())
    v = c.vm_index("vm")
    rep = repair(c)
    loads = c.host_loads(c.place)
    fits = c.allowed[v] & c.on  # hosts the VM may run on (its vCPUs within their threads)
    within = fits & np.all(loads + c.load[v] <= c.limit + 1e-6, axis=1)
    burst = c.cpu_burst(np.full(c.n_hosts, v), np.arange(c.n_hosts))
    room = within & (loads[:, CPU] + c.load[v, CPU] + burst <= c.cap[:, CPU] + 1e-6)
    to = int(rep.place[v])
    if room.any():
        assert room[to], (c.host_names[to], [c.host_names[h] for h in np.flatnonzero(room)])
    elif within.any():
        fill = ((loads + c.load[v]) / c.cap).max(axis=1)
        assert within[to] and fill[to] <= fill[within].min() + 1e-9  # else the emptiest, as before
    elif (fits & np.all(loads + c.load[v] <= c.cap + 1e-6, axis=1)).any():
        assert c.on[to]  # a hard repair: above the limit, within capacity
