"""Storage DRS settings per datastore cluster (snapshot ``datastore_clusters``, version 6): each pod's own
space threshold (or free space), latency threshold, I/O metric, automation and default VMDK affinity,
``sdrs:`` (StorageOptions) for what a pod leaves out and for the datastores in no pod."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.options import StorageOptions
from balancer.errors import InputError
from balancer.snapshot import parse_snapshot

from storage_helpers import datastore, disk, host, replay, storage_snap, vm

SETTINGS = settings(max_examples=int(os.environ.get("PROP_EXAMPLES", 30)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _two_pods(pod_a=None, pod_b=None):
    """Pods a and b, two 1000 GB datastores each; the first of each 85 % full in 50 GB disks."""
    hosts = [host("h0")]
    stores = [datastore(f"{p}{i}", hosts=["h0"], datastore_cluster=f"pod-{p}") for p in "ab" for i in range(2)]
    vms = [vm(f"{p}-v{j}", "h0", [disk("Hard disk 1", f"{p}0", 50)]) for p in "ab" for j in range(17)]
    pods = [dict(name=f"pod-{p}", **(cfg or {})) for p, cfg in (("a", pod_a), ("b", pod_b)) if cfg]
    return storage_snap(hosts, stores, vms, pods=pods)


def _plan(snapshot, **storage):
    options = StorageOptions(**storage)
    plan = make_plan(snapshot, PlanOptions(threshold=1, storage=options))
    assert plan.status == "ok", plan.conflicts
    replay(snapshot, plan, options)
    return plan


def _moved_from(plan, prefix):
    return [m for m in plan.storage_moves if m.disks[0].source.startswith(prefix)]


def test_without_pod_settings_both_pods_follow_sdrs():
    plan = _plan(_two_pods())
    assert _moved_from(plan, "a") and _moved_from(plan, "b")
    assert {d.space_threshold for d in plan.datastores} == {0.8}
    assert {d.latency_threshold_ms for d in plan.datastores} == {15.0}
    assert {d.automation for d in plan.datastores} == {"automated"}


def test_a_pods_own_space_threshold_changes_the_plan_and_is_shown():
    plan = _plan(_two_pods(pod_a={"space_threshold": 0.9}))
    assert not _moved_from(plan, "a"), "85 % is within pod a's 90 % threshold"
    assert _moved_from(plan, "b")
    by = {d.name: d for d in plan.datastores}
    assert by["a0"].space_threshold == 0.9 and by["b0"].space_threshold == 0.8
    assert by["a0"].datastore_cluster == "pod-a"
    assert by["b0"].utilisation_after <= 0.8
    # a lower threshold of its own: pod b relieved further than sdrs's 80 % asks
    low = _plan(_two_pods(pod_b={"space_threshold": 0.6}))
    assert {d.name: d for d in low.datastores}["b0"].utilisation_after <= 0.6 + 1e-9
    assert any("above the 60 % space threshold" in m.detail for m in _moved_from(low, "b"))


def test_a_free_space_threshold_judges_each_datastore_by_gb_free():
    plan = _plan(_two_pods(pod_a={"free_space_gb": 300.0}))  # 150 GB free on a0: over
    by = {d.name: d for d in plan.datastores}
    assert by["a0"].space_threshold == pytest.approx(0.7)
    assert by["a0"].capacity_gb - by["a0"].used_after_gb >= 300 - 1e-6
    assert any("above the 300 GB free space space threshold" in m.detail for m in _moved_from(plan, "a"))


def test_storage_drs_off_in_a_pod_moves_nothing_there_but_evacuation():
    snap = _two_pods(pod_a={"enabled": False})
    plan = _plan(snap)
    assert not _moved_from(plan, "a") and _moved_from(plan, "b")
    assert {d.name: d.automation for d in plan.datastores}["a0"] == "off"
    evac = _plan(_two_pods(pod_a={"enabled": False, "space_threshold": 0.9}), evacuate=("a0",))
    assert len(_moved_from(evac, "a")) == 17 and all(m.reason == "evacuate" for m in evac.storage_moves)


def test_a_manual_pods_moves_are_recommendations_left_out_of_an_automatic_plan():
    snap = _two_pods(pod_a={"automation": "manual"})
    rec = _plan(snap)
    assert _moved_from(rec, "a") and all("automation is manual" in m.detail for m in _moved_from(rec, "a"))
    assert not any("automation is manual" in m.detail for m in _moved_from(rec, "b"))
    auto = _plan(snap, manual_pods=False)
    assert not _moved_from(auto, "a") and _moved_from(auto, "b")


def test_a_pods_io_settings_decide_whether_and_at_what_latency_it_sheds_disks():
    hosts = [host("h0")]
    stores = [datastore(f"{p}{i}", hosts=["h0"], datastore_cluster=f"pod-{p}", latency_ms=lat, other_gb=200.0)
              for p in "ab" for i, lat in ((0, 20.0), (1, 3.0))]
    vms = [vm(f"{p}-v{j}", "h0", [disk("Hard disk 1", f"{p}0", 20)]) for p in "ab" for j in range(5)]
    base = storage_snap(hosts, [dict(d) for d in stores], [dict(v) for v in vms])
    plan = _plan(base)
    assert {m.reason for m in plan.storage_moves} == {"latency"} and _moved_from(plan, "a") and _moved_from(plan, "b")
    pods = [{"name": "pod-a", "io_balancing": False}, {"name": "pod-b", "latency_threshold_ms": 25.0}]
    quiet = _plan(storage_snap(hosts, [dict(d) for d in stores], [dict(v) for v in vms], pods=pods))
    assert not quiet.storage_moves
    by = {d.name: d for d in quiet.datastores}
    assert by["a0"].latency_threshold_ms is None and by["b0"].latency_threshold_ms == 25.0


def test_a_pods_default_vmdk_affinity_off_lets_a_vms_disks_part():
    hosts = [host("h0")]
    stores = [datastore(f"{p}{i}", hosts=["h0"], datastore_cluster=f"pod-{p}") for p in "ab" for i in range(2)]
    # one VM per pod with two 450 GB disks on its pod's first datastore: 90 %
    vms = [vm(f"{p}-v", "h0", [disk("Hard disk 1", f"{p}0", 450), disk("Hard disk 2", f"{p}0", 450)]) for p in "ab"]
    snap = storage_snap(hosts, stores, vms, pods=[{"name": "pod-a", "keep_disks_together": False}])
    plan = _plan(snap)
    assert len(_moved_from(plan, "a")) == 1 and len(_moved_from(plan, "a")[0].disks) == 1
    assert not _moved_from(plan, "b"), "pod b keeps the VM's disks together: 900 GB fits nowhere within 80 %"


@pytest.mark.parametrize("pods, words", [
    ([{"name": "pod-x"}], "no datastore is in datastore cluster 'pod-x'"),
    ([{"name": "pod-a"}, {"name": "pod-a"}], "'pod-a' listed twice"),
    ([{"name": "pod-a", "space_threshold": 0.7, "free_space_gb": 10.0}], "not both"),
    ([{"name": "pod-a", "space_threshold": 0.7, "min_space_difference": 0.7}], "must be below space_threshold"),
])
def test_bad_pod_settings_are_one_line(pods, words):
    doc = {"version": 6, "cluster": "t", "hosts": [host("h0")],
           "datastores": [{"name": "a0", "capacity_gb": 10.0, "free_gb": 10.0, "datastore_cluster": "pod-a"}],
           "datastore_clusters": pods}
    with pytest.raises(InputError) as err:
        parse_snapshot(doc)
    assert words in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) <= 300


def test_a_version_5_snapshot_with_pod_settings_is_refused_by_name():
    doc = {"version": 5, "cluster": "t", "hosts": [host("h0")],
           "datastores": [{"name": "a0", "capacity_gb": 10.0, "free_gb": 10.0, "datastore_cluster": "pod-a"}],
           "datastore_clusters": [{"name": "pod-a"}]}
    with pytest.raises(InputError, match="datastore_clusters: a version 6 field in a version 5 snapshot"):
        parse_snapshot(doc)


@st.composite
def pod_clusters(draw):
    """Two hosts mounting every datastore, in two pods with thresholds of their own (or none), and room
    for every datastore to be within its own threshold."""
    hosts = [host("h0"), host("h1")]
    pods = []
    for name in ("pod-a", "pod-b"):
        kind = draw(st.sampled_from(["none", "share", "free"]))
        cfg = {"name": name, "io_balancing": False}
        if kind == "share":
            cfg["space_threshold"] = draw(st.sampled_from([0.5, 0.65, 0.9]))
        elif kind == "free":
            cfg["free_space_gb"] = float(draw(st.sampled_from([200, 500, 900])))
        pods.append(cfg)
    stores = [datastore(f"ds{i}", capacity=float(draw(st.sampled_from([1000, 2000, 4000]))), hosts=["h0", "h1"],
                        datastore_cluster=pods[i % 2]["name"]) for i in range(draw(st.integers(2, 6)))]
    used = {d["name"]: 0.0 for d in stores}
    vms = []
    for i, pod in enumerate(pods):
        mine = [d for d in stores if d["datastore_cluster"] == pod["name"]]
        total = sum(d["capacity_gb"] for d in mine)
        lowest = min([pod.get("space_threshold", 0.8)]
                     + [1 - pod["free_space_gb"] / d["capacity_gb"] for d in mine if "free_space_gb" in pod])
        budget = max(lowest - 0.2, 0.05) * total  # below every threshold in the pod, with room to spare
        j = 0
        while budget > 0 and j < 40:
            d = mine[0] if draw(st.booleans()) else draw(st.sampled_from(mine))
            size = float(draw(st.integers(2, 20)))
            if used[d["name"]] + size > d["capacity_gb"]:
                d = min(mine, key=lambda x: used[x["name"]] / x["capacity_gb"])
            used[d["name"]] += size
            budget -= size
            vms.append(vm(f"{pod['name']}-v{j}", f"h{j % 2}", [disk("Hard disk 1", d["name"], size)]))
            j += 1
    return storage_snap(hosts, stores, vms, pods=pods)


@SETTINGS
@given(pod_clusters())
def test_no_datastore_ends_above_its_own_pods_threshold_when_its_pod_has_room(snapshot):
    storage = StorageOptions(io_balancing=False, min_space_difference=0.0)
    plan = make_plan(snapshot, PlanOptions(threshold=1, storage=storage))
    assert plan.status == "ok"
    replay(snapshot, plan, storage)
    for d in plan.datastores:
        assert d.used_after_gb <= d.space_threshold * d.capacity_gb + 1e-6, (d.name, d.space_threshold, plan.notes)


def test_the_simulated_clusters_pod_settings_come_from_its_config_and_change_the_plan(tmp_path):
    from balancer.config import SimConfig
    from balancer.sources.sim import SimulatedCluster

    from helpers import run_cli

    base = SimulatedCluster(SimConfig(hosts=4, vms=40)).snapshot()
    assert base.datastore_clusters == []
    top = max(d.used_gb / d.capacity_gb for d in base.datastores)
    low = round(top - 0.1, 2)  # a threshold of its own below the fullest datastore
    snap = SimulatedCluster(SimConfig(hosts=4, vms=40, datastore_clusters={
        "sim-datastores": {"space_threshold": low, "io_balancing": False}})).snapshot()
    [pod] = snap.datastore_clusters
    assert (pod.name, pod.space_threshold, pod.io_balancing, pod.latency_threshold_ms) == ("sim-datastores", low, False, None)
    options = PlanOptions(threshold=1, storage=StorageOptions())
    assert not make_plan(base, options).storage_moves
    plan = make_plan(snap, options)
    assert plan.storage_moves and all(m.reason == "space" for m in plan.storage_moves)
    assert {d.space_threshold for d in plan.datastores} == {low}

    # a pod the simulated cluster does not have: one line, exit 2
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: sim\nsim:\n  hosts: 2\n  vms: 4\n  datastore_clusters:\n    pod-x: {space_threshold: 0.7}\n")
    proc = run_cli("recommend", "--config", str(cfg))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "\n" not in err and len(err) <= 300 and "unknown datastore cluster 'pod-x'" in err, err


# --- thin disks that grow ------------------------------------------------------------------------------
def _growing(rate, days=None):
    """ds0 and ds1 of 1000 GB; on ds0 a thin 400 GB disk using 200 GB and growing ``rate`` GB a day, and
    thick disks to 70 %; ds1 empty."""
    hosts = [host("h0")]
    stores = [datastore("ds0", hosts=["h0"]), datastore("ds1", hosts=["h0"])]
    thin = disk("Hard disk 1", "ds0", 400, used=200, thin=True)
    thin["growth_gb_per_day"] = rate
    vms = [vm("grower", "h0", [thin])] + [vm(f"v{j}", "h0", [disk("Hard disk 1", "ds0", 50)]) for j in range(10)]
    return storage_snap(hosts, stores, vms)


def test_thin_growth_within_the_horizon_counts_against_the_threshold_and_is_shown():
    snap = _growing(20.0)  # 70 % today, +140 GB within 7 days: 84 %
    assert not _plan(snap).storage_moves, "70 % today is within 80 %"
    plan = _plan(snap, growth_days=7.0)
    assert plan.storage_moves and all(m.reason == "space" for m in plan.storage_moves)
    by = {d.name: d for d in plan.datastores}
    grown = {"ds0": 0.0, "ds1": 0.0}
    grown[next(m.disks[0].target for m in plan.storage_moves if m.vm == "grower")
          if any(m.vm == "grower" for m in plan.storage_moves) else "ds0"] = 140.0
    assert {n: d.growth_gb for n, d in by.items()} == grown
    for d in plan.datastores:  # within the threshold with the growth
        assert d.used_after_gb + d.growth_gb <= 0.8 * d.capacity_gb + 1e-6
    # the copy is today's space: growth is not copied
    for m in plan.storage_moves:
        assert m.storage_vmotion.data_gb == sum(k.size_gb for k in m.disks)
    # capped at the provisioned size: 1000 GB a day grows the disk by 200 GB at most
    capped = _plan(_growing(1000.0), growth_days=7.0)
    assert sum(d.growth_gb for d in capped.datastores) == 200.0


@SETTINGS
@given(st.integers(1, 6), st.floats(0.0, 60.0), st.sampled_from([1.0, 7.0, 30.0]), st.integers(0, 8))
def test_thin_growth_never_pushes_a_target_past_its_threshold_within_the_horizon(n_thin, rate, days, thick):
    hosts = [host("h0")]
    stores = [datastore(f"ds{i}", capacity=1000.0, hosts=["h0"]) for i in range(3)]
    vms = []
    for j in range(n_thin):
        k = disk("Hard disk 1", "ds0", 120, used=40, thin=True)
        k["growth_gb_per_day"] = rate
        vms.append(vm(f"t{j}", "h0", [k]))
    vms += [vm(f"v{j}", "h0", [disk("Hard disk 1", f"ds{j % 2}", 60)]) for j in range(thick)]
    snap = storage_snap(hosts, stores, vms)
    plan = make_plan(snap, PlanOptions(threshold=1, storage=StorageOptions(growth_days=days, io_balancing=False)))
    assert plan.status == "ok"
    moved = {d.target for m in plan.storage_moves for d in m.disks}
    for d in plan.datastores:
        assert d.growth_gb is not None and d.used_after_gb + d.growth_gb <= d.capacity_gb + 1e-6
        if d.name in moved:  # a target keeps room for what it received and for its disks' growth
            assert d.used_after_gb + d.growth_gb <= 0.8 * d.capacity_gb + 1e-6
