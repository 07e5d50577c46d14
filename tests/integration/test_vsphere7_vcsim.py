"""vSphere 7's view against the vCenter simulator (#34): the hosts' physical NIC link speeds in the snapshot
(vcsim serves them; it serves no net.* counters, so the traffic stays unknown and the network limit is not
judged), and a host set to severe in the config is evacuated and enters maintenance."""

from __future__ import annotations

import pytest

from balancer.config import Config
from balancer.config.plan_options import plan_options
from balancer.engine import make_plan
from vcsim_harness import host_name

pytestmark = pytest.mark.integration


def test_nic_speeds_are_read_and_unknown_traffic_is_not_judged(vcsim, admin):
    from pyVmomi import vim  # noqa: F401

    served = {}
    for name, h in admin.hosts().items():
        speeds = [p.linkSpeed.speedMb for p in h.config.network.pnic if p.linkSpeed is not None]
        served[name] = float(sum(speeds))
    with vcsim.source() as src:
        snap = src.snapshot()
    assert snap.version == 6
    for h in snap.hosts:
        assert h.nic_mbps == served[h.name] and h.nic_mbps > 0
        assert h.net_rx_mbps is None and h.net_tx_mbps is None and h.net_utilisation is None


def test_a_host_set_to_severe_is_evacuated_into_maintenance(vcsim, admin):
    sick = host_name(1)
    cfg = Config.model_validate({"source": "vcenter", "vcenter": vcsim.vcenter_section(),
                                 "drs": {"host_health": {sick: {"state": "severe", "reason": "PSU 1 failed"}}}})
    with vcsim.source() as src:
        snap = src.snapshot()
        on_sick = {v.name for v in snap.vms if v.host == sick}
        assert on_sick
        plan = make_plan(snap, plan_options(cfg))
        assert {m.vm for m in plan.moves} == on_sick and all(m.target != sick for m in plan.moves)
        assert [(p.host, p.action) for p in plan.power] == [(sick, "enter-maintenance")]
        assert "PSU 1 failed" in plan.power[0].detail
        results = src.execute(plan)
        assert all(r.outcome == "success" for r in results), [(r.subject, r.outcome, r.message) for r in results]
    assert all(host != sick for host in admin.placement().values())
    assert admin.hosts()[sick].runtime.inMaintenanceMode
