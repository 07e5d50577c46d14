"""The number of SOAP requests per collection does not grow with the number of VMs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _requests_per_snapshot(sim) -> tuple[dict, dict, int]:
    """(methods of a first collection, methods of a second one, VMs in the snapshot), counted by the simulator."""
    with sim.source() as src:
        sim.reset()
        snap = src.snapshot()
        first = sim.stats()["methods"]
        sim.reset()
        src.snapshot()
        second = sim.stats()["methods"]
    return first, second, len(snap.vms)


def test_request_count_is_constant_from_50_to_1000_vms(start_vcsim):
    small = start_vcsim(hosts=5, vms_per_host=10)
    first_small, again_small, n_small = _requests_per_snapshot(small)
    small.stop()
    large = start_vcsim(hosts=10, vms_per_host=100)
    first_large, again_large, n_large = _requests_per_snapshot(large)

    assert (n_small, n_large) == (50, 1000)
    assert first_small == first_large
    assert again_small == again_large
    assert first_small.get("QueryPerf") == 1 and first_small.get("RetrievePropertiesEx", 0) >= 2
    assert sum(first_large.values()) <= 10
    assert sum(again_large.values()) <= sum(first_large.values())
