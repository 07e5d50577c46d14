"""What the engine is told about the past. Pure data, built by the service from its journal.

The engine has no clock and no storage: anything that depends on earlier cycles (cooldowns,
back-and-forth detection, DPM demand windows and hold times) reaches it through this object.
An empty History (the default) means "no past": a dry run on a single snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class History:
    # VMs moved within the cooldown: they move again only for a mandatory reason
    # (a broken mandatory rule, a host above capacity, an evacuation).
    cooling: frozenset[str] = frozenset()
    # VM -> hosts it left within the oscillation window: no balance move back to them.
    left: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Hosts whose power state changed within the DPM hold time: DPM leaves them as they are.
    power_hold: frozenset[str] = frozenset()
    # Cluster demand (CPU MHz, memory MB) judged over the DPM windows (e.g. mean + 2 sigma):
    # power-on decisions use the short window, power-off decisions the long one.
    # None: judge on the snapshot's current demand.
    demand_power_on: tuple[float, float] | None = None
    demand_power_off: tuple[float, float] | None = None
    # Why no host may go to standby yet, in words (e.g. the power-off window is not yet covered
    # by samples: the service just started, or collections stopped for a while). None: standby
    # is judged as usual. Power-on is never blocked by it.
    standby_blocked: str | None = None
    # The share of the power-off window the samples cover, when ``standby_blocked`` is only that the
    # window is not yet covered (a service that just started; not a gap in the collections): with
    # DpmOptions.scale_partial_window the standby decision then goes ahead on the demand seen so far
    # divided by this share (5 minutes of a 40-minute window: the demand counted 8x), so a cluster far
    # below the band need not wait the whole window. None (or 0): standby_blocked blocks as before.
    off_window_covered: float | None = None
    # A paced consolidation is under way: the last power action within the power-off window put hosts
    # into standby (and none was woken since). Standby then goes on while the demand is below the
    # band's target, not only below its bottom: a descent paced over several plans ends where a
    # one-step consolidation would (the target), instead of stopping as soon as it enters the band.
    dpm_descending: bool = False
    # VM -> its demand (CPU MHz, memory MB) judged over the recent past (mean + 1 sigma of the
    # last samples). When given and PlanOptions.recent_demand is on, the plan balances and checks
    # capacity on max(this, the VM's reservation) instead of the single latest sample, so moves
    # do not chase five-minute noise. VMs missing from it use the snapshot's demand.
    vm_demand: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # Datastore -> the trend of the space its thin disks take, GB a day (0 when falling), fitted over the
    # collection window (journal/past.py). With StorageOptions.growth_days on, it is shared out to the
    # datastore's thin disks that have no Disk.growth_gb_per_day of their own (storage/growth.py).
    # Datastores missing from it (too few collections yet) count no growth.
    datastore_growth: Mapping[str, float] = field(default_factory=dict)


NO_HISTORY = History()
