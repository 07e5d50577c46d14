"""Invariants of the domain planner on random domains (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from balancer.engine import plan_domain
from balancer.checks.cross import cross_premise
from balancer.snapshot import parse_snapshot
from domain_helpers import cluster, options

EVC = ["intel-haswell", "intel-skylake", "intel-icelake"]


@st.composite
def domains(draw):
    n = draw(st.integers(2, 3))
    snaps, vcenters = {}, {}
    for i in range(n):
        name = f"c{i}"
        vms = draw(st.lists(st.tuples(st.floats(0, 20_000), st.floats(1_024, 60_000)), max_size=30))
        snaps[name] = cluster(
            name, draw(st.integers(1, 4)), vms, evc=draw(st.sampled_from(EVC + [None])),
            host_evc=draw(st.sampled_from(EVC)), networks=tuple(draw(st.sets(st.sampled_from(["prod", "dmz"]),
                                                                           min_size=1))),
            cores=draw(st.sampled_from([4, 16, 32])), datastore_gb=draw(st.sampled_from([2_000.0, 20_000.0])),
            standby=0)
        vcenters[name] = draw(st.sampled_from(["vc1", "vc2"]))
    return snaps, vcenters, draw(st.integers(0, 6))


@settings(max_examples=60, deadline=None)
@given(domains())
def test_every_move_is_compatible_fits_and_keeps_the_target_within_room(case):
    snaps, vcenters, cap = case
    opts = options(*snaps, vcenters=vcenters, max_moves=cap)
    plan = plan_domain(snaps, opts)
    assert len(plan.moves) <= cap
    assert len({m.vm for m in plan.moves}) == len(plan.moves)
    over = {c.cluster for c in plan.clusters if c.over}
    # replay the moves one by one on the snapshots: each holds where it is made
    current = {n: s.to_json_dict() for n, s in snaps.items()}
    for m in plan.moves:
        assert m.source_cluster in over and m.target_cluster != m.source_cluster
        src, tgt = parse_snapshot(current[m.source_cluster]), parse_snapshot(current[m.target_cluster])
        assert src.vm(m.vm).movable
        assert cross_premise(m, src, tgt, opts) is None, cross_premise(m, src, tgt, opts)
        vm = next(v for v in current[m.source_cluster]["vms"] if v["name"] == m.vm)
        current[m.source_cluster]["vms"].remove(vm)
        vm = dict(vm, host=m.target)
        if m.datastore is not None:
            vm["disks"] = [dict(d, datastore=m.datastore) for d in vm.get("disks", [])]
        current[m.target_cluster]["vms"].append(vm)
        for d in vm.get("disks", []):  # the target's datastore now holds them too (the source's may keep the space)
            for ds in current[m.target_cluster].get("datastores", []):
                if ds["name"] == d["datastore"]:
                    ds["free_gb"] = max(ds["free_gb"] - d.get("used_gb", d["size_gb"]), 0.0)
    for c in plan.clusters:
        if any(m.target_cluster == c.cluster for m in plan.moves):
            assert max(c.cpu_after, c.mem_after) <= opts.room + 1e-9
        if c.cluster in over and not plan.moves:
            assert plan.notes
