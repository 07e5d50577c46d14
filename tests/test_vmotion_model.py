"""The pre-copy model's vectorised seconds (DPM's evacuation cost) are the scalar model's, VM by VM."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from balancer.engine.compute.vmotion import estimate, seconds

MEM = st.one_of(st.just(0.0), st.floats(0.0, 2e6, allow_nan=False))
RATE = st.one_of(st.just(0.0), st.floats(0.0, 1e6, allow_nan=False))
BANDWIDTH = st.one_of(st.just(0.0), st.floats(0.0, 1e5, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(MEM, RATE, BANDWIDTH), min_size=1, max_size=20))
def test_vectorised_seconds_are_the_scalar_estimates(vms):
    mem, rate, bw = (np.array(x) for x in zip(*vms))
    want = np.array([estimate(m, d, b).seconds for m, d, b in vms])
    np.testing.assert_allclose(seconds(mem, rate, bw), want, rtol=1e-9)


def test_seconds_by_hand():
    # 870 MB over 1 Gbit/s, nothing dirtied: one copy of 6,960 Mbit = 6.96 s, plus the 1 s setup
    assert seconds(np.array([870.0]), np.array([0.0]), np.array([1000.0]))[0] == estimate(870.0, 0.0, 1000.0).seconds
    assert abs(seconds(np.array([870.0]), np.array([0.0]), np.array([1000.0]))[0] - 7.96) < 1e-9
    assert seconds(np.array([0.0]), np.array([5.0]), np.array([1000.0]))[0] == 1.0  # nothing to copy: the setup
