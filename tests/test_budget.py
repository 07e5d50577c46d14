"""MoveBudget: one meaning for every cap on moves (None: no cap, 0: no move at all)."""

import pytest

from balancer.engine import PlanOptions
from balancer.engine.budget import MoveBudget
from balancer.engine.options import StorageOptions


def test_no_cap_and_zero():
    free, none, three = MoveBudget(), MoveBudget(0), MoveBudget(3)
    assert not free.capped and free.allows(10**9) and not free.binds(10**9) and free.limit(7) == 7
    assert none.nothing and not none.allows(1) and none.allows(0) and none.limit(7) == 0 and none.spent_by(0)
    assert three.binds(4) and not three.binds(3) and three.limit(2) == 2 and three.limit() == 3
    assert three.spent_by(3) and not three.spent_by(2) and three.plus(2) == MoveBudget(5) and free.plus(2) == free


def test_allowance_counts_down():
    left = MoveBudget(2).allowance()
    left.take()
    assert not left.spent
    left.take()
    assert left.spent and MoveBudget().allowance().left > 10**15


def test_options_read_their_caps_through_it():
    o = PlanOptions(max_moves=0, max_repair_moves=4)
    assert o.moves_budget.nothing and o.repair_budget == MoveBudget(4) and PlanOptions().moves_budget == MoveBudget()
    assert StorageOptions(max_moves=1).moves_budget.limit() == 1
    with pytest.raises(ValueError):
        MoveBudget(-1)
