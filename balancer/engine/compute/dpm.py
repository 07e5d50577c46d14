"""DPM (Distributed Power Management): which hosts to put into standby or to power on. Pure.

Demand is judged per resource as demand / capacity of the hosts that are on (the higher of
CPU and memory counts), against the band target ± tolerance (63 % ± 18 % = 45 %–81 % by
default, as in DRS):

- **power on** when the demand judged over the power-on window is above the band, or no
  longer fits with the ``headroom_hosts`` largest hosts lost (HA headroom), or a mandatory
  VM-host rule's host group is above the band: standby hosts are woken, the most efficient
  first (CPU capacity per peak watt when host power is known, else the largest), until the
  demand is back at the target and the headroom holds;
- **standby** when the demand judged over the power-off window is below the band: hosts are
  taken one at a time, the cheapest to evacuate per watt saved first (memory to move divided
  by the predicted saving when host power is known, else memory to move), as long as after
  them the demand stays at or below the target, at least ``min_hosts_on`` hosts stay on, the
  demand fits with the ``headroom_hosts`` largest remaining hosts lost, every mandatory
  VM-host rule's host group keeps its VMs' demand at or below the target, and the mandatory
  rules can still all hold;
- hosts in ``History.power_hold`` (their power or maintenance state changed within the hold time) are left
  as they are, so a decision is not reversed at once; while any host is held (it was just
  powered on, or just went to standby) no other host goes to standby either, so consolidation
  waits a hold time between steps (power-on is never held back that way); a host with a VM
  that may not be moved (manual or disabled override, or within its cooldown) is not put into
  standby;
- ``History.standby_blocked`` (set by the service while the power-off window is not covered by
  samples) keeps every host on, unless only the start of the window is missing
  (``History.off_window_covered``) and ``scale_partial_window`` is on: then the demand seen so far,
  divided by the share of the window seen, is judged (``off_demand``);
- ``History.dpm_descending`` (a paced descent under way) lets standby go on while the demand is below
  the band's target, not only below its bottom; a chosen host whose VMs cannot all move is replaced
  by the next that could go (``PowerChoice.spare``, power.py); ``empty_only`` (a plan allowed no moves) lets only hosts with no
  powered-on VM go to standby;
- the HA headroom has a margin: a standby host is powered on when the demand no longer fits
  within the limits (capacity minus headroom) with the largest hosts lost, while a host goes
  to standby only if the demand would still fit within the band's top (81 %) of the rest.

The windows are computed outside the engine (``window_demand`` is the statistic: mean + 2
standard deviations of the samples in the window); without them the snapshot's current
demand is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...snapshot import HostState
from .cluster import BALANCED, CPU, MEM, Cluster
from .feasibility import find_conflicts
from ..history import History
from .hoststate import host_mask, vms_on, with_hosts_leaving
from .vmotion import seconds as vmotion_seconds
from ..options import DpmOptions
from ..words import pct
from ...words import counted, plural

SIGMAS = 2.0  # a window's demand: mean + SIGMAS x standard deviation


def window_demand(samples: Sequence[Sequence[float]], sigmas: float = SIGMAS) -> tuple[float, float]:
    """The demand a window stands for: mean + ``sigmas`` standard deviations of its (CPU MHz, memory MB) samples."""
    arr = np.asarray(samples, dtype=float).reshape(-1, 2)
    if not len(arr):
        raise ValueError("a demand window needs at least one sample")
    value = arr.mean(axis=0) + sigmas * arr.std(axis=0)
    return float(value[CPU]), float(value[MEM])


@dataclass
class PowerChoice:
    power_on: list[int] = field(default_factory=list)  # standby hosts to wake, in order
    standby: list[int] = field(default_factory=list)  # hosts to empty and put into standby
    # hosts that could also go at this demand (after ``standby``, in order, each check passed with all of
    # them gone): a plan takes one in place of a chosen host whose VMs cannot all be moved
    spare: list[int] = field(default_factory=list)
    why: dict[int, str] = field(default_factory=dict)  # host -> the decision in words
    notes: list[str] = field(default_factory=list)
    demand_off: np.ndarray | None = None  # (2,) the demand the standby decision was judged on
    windowed_off: bool = False
    scaled: str | None = None  # the power-off window only partly seen: the share, in words (off_demand)


@dataclass
class _Scope:
    """Hosts and the demand that has to run on them: the whole cluster, or one mandatory VM-host rule."""

    rule: str | None
    hosts: np.ndarray  # (H,) bool
    demand_on: np.ndarray  # (2,) judged over the power-on window
    demand_off: np.ndarray  # (2,) judged over the power-off window


def _pct(x: float) -> str:
    return "∞" if not math.isfinite(x) else pct(x)


def _ratio(demand: np.ndarray, cap: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(cap > 0, demand / np.where(cap > 0, cap, 1.0), np.where(demand > 0, np.inf, 0.0))
    return out


def utilisation(cluster: Cluster, hosts_on: np.ndarray, demand: np.ndarray, scope: np.ndarray | None = None) -> np.ndarray:
    """(2,) demand / capacity of the hosts on (within ``scope``)."""
    mask = hosts_on if scope is None else hosts_on & scope
    return _ratio(demand, cluster.cap[mask][:, BALANCED].sum(axis=0))


def headroom_ok(cluster: Cluster, hosts_on: np.ndarray, demand: np.ndarray, lost: int,
                level: float | Sequence[float] | None = None) -> bool:
    """Does ``demand`` fit on the hosts on with the ``lost`` largest of them gone?

    It fits within the hosts' limits (capacity minus headroom), or, with ``level``, within that
    share of their capacity (at most their limits).
    """
    lim = cluster.limit[hosts_on]
    if level is not None:
        lv = np.ones(lim.shape[1])
        lv[:2] = level  # one level, or (CPU, memory)
        lim = np.minimum(lim, cluster.cap[hosts_on] * lv)
    for r in (CPU, MEM):
        kept = np.sort(lim[:, r])[::-1][lost:].sum()
        if demand[r] > kept + 1e-6:
            return False
    return True


def _describe(u: np.ndarray) -> str:
    return f"CPU {_pct(u[CPU])}, memory {_pct(u[MEM])}"


def choose_power(cluster: Cluster, dpm: DpmOptions, history: History, empty_only: bool = False) -> PowerChoice:
    """DPM's decision for this snapshot: hosts to power on, or hosts to put into standby (never both).

    ``empty_only``: no move may be made, so only hosts already empty of powered-on VMs may go to standby.
    """
    on = cluster.on.copy()
    current = cluster.load[:, BALANCED].sum(axis=0) if cluster.n_vms else np.zeros(2)
    d_on = np.array(history.demand_power_on, dtype=float) if history.demand_power_on is not None else current
    d_off, blocked, scaled = off_demand(history, dpm, current)
    windowed_on = history.demand_power_on is not None
    windowed_off = history.demand_power_off is not None
    lo, hi = np.array(dpm.lows), np.array(dpm.highs)
    band = band_words(dpm)
    held = host_mask(cluster, (cluster._host_idx[n] for n in history.power_hold if n in cluster._host_idx))
    scopes = _scopes(cluster, d_on, d_off, current)
    out = PowerChoice()
    if not on.any():
        return out

    # --- power on ---------------------------------------------------------------------------------
    wake_reasons = []
    for s in scopes:
        u = utilisation(cluster, on, s.demand_on, s.hosts)
        if (u > hi + 1e-9).any():
            where = "cluster" if s.rule is None else f"rule {s.rule}'s hosts"
            wake_reasons.append((s, f"{where} demand {_describe(u)}{' (power-on window)' if windowed_on else ''} "
                                    f"is above the {band} band"))
    cluster_scope = scopes[0]
    lost = lost_hosts(cluster, dpm)
    ha_broken = not headroom_ok(cluster, on, d_on, lost)
    if ha_broken:
        wake_reasons.append((cluster_scope, f"{_headroom_words(cluster, dpm)}: the demand no longer fits with the "
                                            f"{counted(lost, 'largest host')} lost"))
    in_standby = np.array([h.state is HostState.STANDBY and host_override(cluster, dpm, i, "on") is None
                           for i, h in enumerate(cluster.snapshot.hosts)], dtype=bool)
    # a host its duties close (health, network: compat.closed_hosts) would receive no VM: woken, it adds nothing
    closed = in_standby & host_mask(cluster, (cluster._host_idx[n] for n in cluster.closed if n in cluster._host_idx))
    in_standby &= ~closed
    standby = in_standby & ~held
    if wake_reasons:
        # Capacity comes before anti-flapping: when the HA headroom is broken, a host held after
        # going to standby is woken too (after the others).
        extra = in_standby & held if ha_broken else np.zeros_like(held)
        if not standby.any() and not extra.any():
            shut = [cluster.host_names[h] for h in np.flatnonzero(closed)]
            out.notes.append(f"DPM: {wake_reasons[0][1]}, and no standby host can be powered on"
                             + (f" ({', '.join(shut)}: {cluster.closed[shut[0]]})" if shut else ""))
            return out
        order = _wake_order(cluster, standby) + _wake_order(cluster, extra)
        woken = on.copy()
        for scope, reason in wake_reasons:
            for h in order:
                if woken[h] or not scope.hosts[h]:
                    continue
                u = utilisation(cluster, woken, scope.demand_on, scope.hosts)
                ha = scope.rule is not None or headroom_ok(cluster, woken, d_on, lost)
                if (u <= np.array(dpm.targets) + 1e-9).all() and ha:
                    break
                woken[h] = True
                out.power_on.append(int(h))
                manual = cluster.snapshot.hosts[h].dpm == "manual"
                out.why[int(h)] = reason + (" (the host's DPM override is manual: a recommendation for an admin)"
                                            if manual else "")
        return out

    # --- standby ----------------------------------------------------------------------------------
    u_off = utilisation(cluster, on, d_off)
    window = f" (power-off window, {scaled} seen so far)" if scaled else " (power-off window)" if windowed_off else ""
    # a paced descent under way goes on to the target; otherwise standby starts below the band's bottom
    floor = np.array(dpm.targets) if history.dpm_descending else lo
    if (u_off >= floor - (1e-9 if history.dpm_descending else 0.0)).any():
        if windowed_on or windowed_off:
            judged = (f"{_describe(utilisation(cluster, on, d_on))} over the power-on window and "
                      f"{_describe(u_off)} over the power-off window{f' ({scaled} seen so far)' if scaled else ''}")
        else:
            judged = _describe(u_off)
        where = f"at or above the {_target_words(dpm)} target" if history.dpm_descending and (u_off < lo).all() \
            else f"within the {band} band"
        out.notes.append(f"DPM: demand {judged} is {where}; no power change")
        return out
    if blocked:
        out.notes.append(f"DPM: demand {_describe(u_off)}{window} is below the band, but no host goes to standby: "
                         f"{blocked}")
        return out
    recent = [cluster.host_names[h] for h in np.flatnonzero(held)]
    hold_words = (f"DPM: demand {_describe(u_off)}{window} is below the band, but {', '.join(recent)} "
                  f"changed power or maintenance state within the hold time; no host goes to standby until it has passed")
    if not dpm.all_steps and ((held & on).any() or (recent and (dpm.standby_cap == 1 or (
            dpm.max_standby_share is not None and dpm.max_standby_share * on.sum() <= 1)))):
        # cluster-wide hold: a power-on within the hold time is followed by no standby until it has
        # passed (and, one host a plan, another host's standby too); the next step is judged afresh
        out.notes.append(hold_words)
        return out
    # a host held itself stays as it is
    candidates = _standby_candidates(cluster, on & ~held, empty_only)
    if not candidates:
        if empty_only:
            out.notes.append(f"DPM: demand {_describe(u_off)}{window} is below the band, but no moves are allowed "
                             f"and no host that is on is empty")
        else:
            out.notes.append(f"DPM: demand {_describe(u_off)}{window} is below the band, but every host that is on "
                             f"runs a VM that may not move")
        return out
    one = dpm.standby_cap == 1 or (dpm.max_standby_share is not None and dpm.max_standby_share * on.sum() <= 1)
    cap = 1 if one and not dpm.all_steps else dpm.standby_cap
    picked, refusals = _pick_standby(cluster, dpm, on, candidates, scopes, 1 if cap == 1 else None)
    if cap != 1 and not dpm.all_steps:
        take = paced(cluster, dpm, on, picked)
        picked, out.spare = picked[:take], picked[take:]
        if recent and len(picked) == 1:
            # near the band (one host this plan): the hold time after the last standby is waited for
            out.notes.append(hold_words)
            return out
    out.standby = picked
    chosen = host_mask(cluster, picked)
    refusal = refusal_words(cluster, dpm, list(refusals.items()))
    if not out.standby:
        out.notes.append(f"DPM: demand {_describe(u_off)}{window} is below the {band} band, "
                         f"but no host can go to standby ({refusal})")
        return out
    out.demand_off = d_off
    out.windowed_off = windowed_off
    out.scaled = scaled
    for h in out.standby:
        out.why[h] = standby_reason(cluster, dpm, out, on & ~chosen, h)
    return out


def off_demand(history: History, dpm: DpmOptions, current: np.ndarray) -> tuple[np.ndarray, str | None, str | None]:
    """The demand standby decisions judge, why standby is blocked (None: it is not), and, when the
    power-off window is only partly covered and ``dpm.scale_partial_window`` is on, the share seen in
    words: the demand seen so far is then divided by that share (the part of the window not yet seen
    is assumed to raise it in proportion) and standby is not blocked for the window alone."""
    d_off = np.array(history.demand_power_off, dtype=float) if history.demand_power_off is not None else current
    blocked, covered = history.standby_blocked, history.off_window_covered
    if blocked and dpm.scale_partial_window and covered is not None and 0.0 < covered < 1.0:
        return d_off / covered, None, f"{covered:.0%} of it, demand counted {1.0 / covered:.3g}x"
    return d_off, blocked, None


def band_words(dpm: DpmOptions) -> str:
    """The band in words: one range when CPU and memory share it, else each resource's."""
    lo, hi = dpm.lows, dpm.highs
    if dpm.same_band:
        return f"{_pct(lo[CPU])}–{_pct(hi[CPU])}"
    return f"CPU {_pct(lo[CPU])}–{_pct(hi[CPU])} / memory {_pct(lo[MEM])}–{_pct(hi[MEM])}"


def _target_words(dpm: DpmOptions) -> str:
    t = dpm.targets
    return _pct(t[CPU]) if dpm.same_band else f"CPU {_pct(t[CPU])} / memory {_pct(t[MEM])}"


def paced(cluster: Cluster, dpm: DpmOptions, on: np.ndarray, picked: list[int]) -> int:
    """How many of ``picked`` (every host that could go to standby at this demand, in order) this plan takes.

    The pace follows the gap: ceil(``pace`` x the hosts that could go), at least one, at most
    ``max_standby``; and the VMs moved off them stay within ``moves_per_host`` per host that stays on
    (the vMotion limit), the first host always allowed.
    """
    if not picked:
        return 0
    take = max(1, math.ceil(dpm.pace * len(picked) - 1e-9))
    n_on = int(on.sum())
    if dpm.max_standby is not None:
        take = min(take, dpm.max_standby)
    if dpm.max_standby_share is not None:
        take = min(take, max(1, math.ceil(dpm.max_standby_share * n_on - 1e-9)))
    moving = 0
    for i, h in enumerate(picked[:take]):
        moving += int(vms_on(cluster, host_mask(cluster, [h])).sum())
        if i > 0 and moving > dpm.moves_per_host * (n_on - i - 1):
            return i
    return take


def standby_reason(cluster: Cluster, dpm: DpmOptions, choice: PowerChoice, remaining: np.ndarray,
                   h: int | None = None) -> str:
    """A standby decision in words: the demand that was judged, and the hosts that stay on (and, for a
    host ``h`` whose DPM override is manual, that an admin carries it out)."""
    window = f" (power-off window, {choice.scaled} seen so far)" if choice.scaled else \
        " (power-off window)" if choice.windowed_off else ""
    before = utilisation(cluster, cluster.on, choice.demand_off)
    after = utilisation(cluster, remaining, choice.demand_off)
    manual = " (the host's DPM override is manual: a recommendation for an admin)" \
        if h is not None and cluster.snapshot.hosts[h].dpm == "manual" else ""
    return (f"demand {_describe(before)}{window} is below the {band_words(dpm)} band; "
            f"{int(remaining.sum())} hosts stay on at {_describe(after)}{manual}")


def _scopes(cluster: Cluster, d_on: np.ndarray, d_off: np.ndarray, current: np.ndarray) -> list[_Scope]:
    scopes = [_Scope(None, np.ones(cluster.n_hosts, dtype=bool), d_on, d_off)]
    with np.errstate(divide="ignore", invalid="ignore"):
        f_on = np.where(current > 0, d_on / np.where(current > 0, current, 1.0), 1.0)
        f_off = np.where(current > 0, d_off / np.where(current > 0, current, 1.0), 1.0)
    for g in cluster.host_sets:
        if not g.mandatory or not len(g.vms):
            continue
        members = g.vms[cluster.powered[g.vms]]
        if not len(members):
            continue
        demand = cluster.load[members][:, BALANCED].sum(axis=0)
        hosts = g.ok
        scopes.append(_Scope(g.rule, hosts.copy(), demand * f_on, demand * f_off))
    return scopes


def _wake_order(cluster: Cluster, standby: np.ndarray) -> list[int]:
    """Standby hosts, the best to wake first: most CPU capacity per peak watt, else the largest."""
    hosts = [int(h) for h in np.flatnonzero(standby)]
    cap = cluster.cap[:, BALANCED] / np.maximum(cluster.cap[:, BALANCED].max(axis=0), 1e-9)
    if cluster.power_peak_w is not None:
        key = {h: -cluster.cap[h, CPU] / max(float(cluster.power_peak_w[h]), 1.0) for h in hosts}
    else:
        key = {h: -float(cap[h].sum()) for h in hosts}
    return sorted(hosts, key=lambda h: (key[h], h))


def saving_estimate_w(cluster: Cluster, h: int, hosts_on: np.ndarray) -> float | None:
    """Watts saved by emptying host ``h`` into the other hosts that are on (linear idle-to-peak power model)."""
    if cluster.power_idle_w is None or cluster.power_peak_w is None:
        return None
    slope = (cluster.power_peak_w - cluster.power_idle_w) / cluster.cap[:, CPU]  # W per MHz
    cpu = float(cluster.host_loads(cluster.place)[h, CPU])
    others = hosts_on.copy()
    others[h] = False
    elsewhere = float(np.median(slope[others])) if others.any() else 0.0
    return float(cluster.power_idle_w[h] + slope[h] * cpu - elsewhere * cpu)


def evacuation_costs(cluster: Cluster) -> np.ndarray:
    """(V,) what moving each VM costs it, in MHz-seconds: its vMotion seconds (the pre-copy model) times
    its CPU demand, as a busy VM is slowed while it is copied and dirties its memory faster; at least
    1 MHz, so an idle VM still costs its seconds. Emptying a host costs the sum over its VMs."""
    secs = vmotion_seconds(cluster.mem_mb, cluster.dirty_mbps, cluster.bandwidth_mbps[cluster.place])
    return secs * np.maximum(cluster.load[:, CPU], 1.0)


def _standby_candidates(cluster: Cluster, eligible: np.ndarray, empty_only: bool = False) -> list[int]:
    """Hosts that may go to standby, the cheapest first: what emptying the host costs its VMs
    (``evacuation_costs``) per watt saved, times the share of the capacity that is on it takes away (a
    large host gone leaves less room under the band's target, so fewer hosts go in all)."""
    out = []
    key = {}
    costs = evacuation_costs(cluster)
    on_cap = cluster.cap[eligible | cluster.on][:, BALANCED]
    mean_cap = np.maximum(on_cap.mean(axis=0), 1e-9) if len(on_cap) else np.ones(on_cap.shape[1])
    for h in np.flatnonzero(eligible):
        h = int(h)
        leaving = vms_on(cluster, host_mask(cluster, [h]))
        if (leaving & ~cluster.movable).any() or (cluster.manual is not None and (leaving & cluster.manual).any()):
            continue  # a VM that may not move (or only by an admin's hand) keeps the host on
        if empty_only and leaving.any():
            continue  # no moves allowed: only a host already empty
        cost = float(costs[leaving].sum())
        saved = saving_estimate_w(cluster, h, eligible | cluster.on)
        size = float((cluster.cap[h, BALANCED] / mean_cap).mean())
        key[h] = size * ((cost + 1.0) / max(saved, 1.0) if saved is not None else cost)
        out.append(h)
    return sorted(out, key=lambda h: (key[h], h))


def lost_hosts(cluster: Cluster, dpm: DpmOptions) -> int:
    """Hosts whose loss the demand must survive: ``headroom_hosts``, raised to HA's host failures to tolerate."""
    ha = cluster.snapshot.ha
    if ha is not None and ha.policy == "host-failures":
        return max(dpm.headroom_hosts, ha.host_failures)
    return dpm.headroom_hosts


def _headroom_words(cluster: Cluster, dpm: DpmOptions) -> str:
    ha = cluster.snapshot.ha
    if ha is not None and ha.policy == "host-failures" and ha.host_failures > dpm.headroom_hosts:
        return f"HA admission control ({counted(ha.host_failures, 'host failure')} tolerated)"
    return "HA headroom"


def ha_words(cluster: Cluster) -> str | None:
    """The snapshot's HA admission control in words (None: none)."""
    ha = cluster.snapshot.ha
    if ha is None:
        return None
    if ha.policy == "host-failures":
        return f"HA admission control: {counted(ha.host_failures, 'host failure')} tolerated"
    if ha.policy == "percentage":
        return f"HA admission control: {ha.cpu_percent:g} % CPU and {ha.mem_percent:g} % memory kept for failover"
    return f"HA admission control: {plural(len(ha.failover_hosts), 'failover host')} {', '.join(ha.failover_hosts)}"


def ha_shortfall(cluster: Cluster, hosts_on: np.ndarray, demand: np.ndarray) -> str | None:
    """Why ``demand`` on ``hosts_on`` would not leave the capacity HA admission control keeps (None: it would)."""
    ha = cluster.snapshot.ha
    if ha is None:
        return None
    if ha.policy == "percentage":
        free = 1.0 - np.array([ha.cpu_percent, ha.mem_percent]) / 100.0
        u = utilisation(cluster, hosts_on, demand)
        if (u > free + 1e-9).any():
            return (f"HA admission control keeps {ha.cpu_percent:g} % CPU and {ha.mem_percent:g} % memory free for "
                    f"failover; the demand would take {_describe(u)} of the rest")
    elif ha.policy == "failover-hosts":
        failover = host_mask(cluster, (cluster._host_idx[n] for n in ha.failover_hosts if n in cluster._host_idx))
        rest = hosts_on & ~failover
        if not headroom_ok(cluster, rest, demand, 0):
            return (f"HA admission control: the demand would not fit within the limits of the hosts on besides "
                    f"the {plural(len(ha.failover_hosts), 'failover host')} {', '.join(ha.failover_hosts)}")
    return None


def _pick_standby(cluster: Cluster, dpm: DpmOptions, on: np.ndarray, candidates: list[int], scopes: list[_Scope],
                  cap: int | None) -> tuple[list[int], dict[int, str]]:
    """Hosts to put into standby, taken in the candidates' order while each keeps the checks; and why the others may not."""
    chosen = np.zeros(cluster.n_hosts, dtype=bool)
    picked: list[int] = []
    refusals: dict[int, str] = {}
    for h in candidates:
        if cap is not None and len(picked) >= cap:
            break  # a few hosts at a time: the next plan judges the demand again
        trial = on & ~chosen
        trial[h] = False
        why_not = _standby_refusal(cluster, dpm, trial, chosen | host_mask(cluster, [h]), scopes, h)
        if why_not:
            refusals[int(h)] = why_not
            continue
        chosen[h] = True
        picked.append(int(h))
    return picked, refusals


def refusal_words(cluster: Cluster, dpm: DpmOptions, refusals: list[tuple[int, str]]) -> str | None:
    """What keeps the next host from going to standby, in words: the first host refused for the cluster's
    reasons (demand, HA, rules), then the hosts that their own DPM settings keep on; when only those
    are refused, the first of them with its reason."""
    own = [(h, why) for h, why in refusals if host_override(cluster, dpm, h)]
    rest = [(h, why) for h, why in refusals if not host_override(cluster, dpm, h)]
    first = rest[0] if rest else own[0] if own else None
    if first is None:
        return None
    words = f"{cluster.host_names[first[0]]}: {first[1]}"
    others = [cluster.host_names[h] for h, _ in own if h != first[0]]
    if others:
        shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
        words += f"; kept on by their own DPM settings: {shown}"
    return words


def host_override(cluster: Cluster, dpm: DpmOptions, h: int, to: str = "standby") -> str | None:
    """Why host ``h``'s own DPM settings keep it from going ``to`` standby (or being powered on): its
    per-host override, or no way to wake it (None: they do not)."""
    host = cluster.snapshot.hosts[h]
    if host.dpm == "disabled":
        return "DPM is disabled for this host (its per-host override)"
    if host.dpm == "manual" and not dpm.manual_hosts:
        return "its DPM override is manual: its power changes are recommended to an admin, not made"
    if to == "standby" and host.wake is False:
        return "no way to wake it is configured (Wake-on-LAN or IPMI/iLO): it would stay in standby"
    return None


def _standby_refusal(cluster: Cluster, dpm: DpmOptions, remaining: np.ndarray, leaving: np.ndarray,
                     scopes: list[_Scope], h: int) -> str | None:
    """Why ``h`` may not join the hosts going to standby (None: it may)."""
    own = host_override(cluster, dpm, h)
    if own:
        return own
    if int(remaining.sum()) < dpm.min_hosts_on:
        return f"min_hosts_on is {dpm.min_hosts_on}"
    for s in scopes:
        if not s.hosts[h]:
            continue
        u = utilisation(cluster, remaining, s.demand_off, s.hosts)
        if (u > np.array(dpm.targets) + 1e-9).any():
            where = "the demand" if s.rule is None else f"rule {s.rule}'s VMs"
            return f"{where} would reach {_describe(u)}, above the {_target_words(dpm)} target"
    ha = cluster.snapshot.ha
    if ha is not None and ha.policy == "failover-hosts" and cluster.host_names[h] in ha.failover_hosts:
        return f"HA admission control: {cluster.host_names[h]} is a dedicated failover host"
    # HA headroom, with a margin against flapping: a host is powered on again only when the demand
    # no longer fits within the limits with the largest hosts lost; it goes to standby only when
    # the demand would then still fit within the band's top.
    lost = lost_hosts(cluster, dpm)
    if not headroom_ok(cluster, remaining, scopes[0].demand_off, lost, level=dpm.highs):
        top = _pct(dpm.highs[CPU]) if dpm.same_band else f"CPU {_pct(dpm.highs[CPU])} / memory {_pct(dpm.highs[MEM])}"
        return (f"{_headroom_words(cluster, dpm)}: with the {counted(lost, 'largest host')} lost the demand would be above "
                f"{top} of the rest")
    short = ha_shortfall(cluster, remaining, scopes[0].demand_off)
    if short:
        return short
    conflicts = find_conflicts(with_hosts_leaving(cluster, leaving))
    if conflicts:
        return conflicts[0]
    return None


@dataclass
class EndState:
    """Where DPM's consolidation ends at this demand: the hosts on once every standby step is taken."""

    hosts_on: np.ndarray  # (H,) bool: on at the end state
    standby: list[int]  # hosts that go to standby on the way there, in order (this plan's first)
    limit: str | None  # what keeps the next host on, in words (None: no host is below the band)
    steps: list[tuple[int, np.ndarray, int | None]]  # (hosts on, utilisation (2,), host that left): now, then each step
    saves_w: float | None  # predicted watts saved by every host in ``standby``


def end_state(cluster: Cluster, dpm: DpmOptions, history: History, standby_now: list[int],
              woken: list[int]) -> EndState:
    """DPM's end state at the demand judged now: this plan's changes, then standby steps one at a time with
    the same checks (band target, min_hosts_on, HA headroom and admission control, rules) until none passes.

    Unlike one plan's step, it waits for no hold time and no demand window to fill, and takes no cap:
    it is where the service's pace (``max_standby`` per plan, a hold time between steps) leads.
    """
    on = cluster.on.copy()
    current = cluster.load[:, BALANCED].sum(axis=0) if cluster.n_vms else np.zeros(2)
    d_on = np.array(history.demand_power_on, dtype=float) if history.demand_power_on is not None else current
    d_off = off_demand(history, dpm, current)[0]
    steps: list[tuple[int, np.ndarray, int | None]] = [(int(on.sum()), utilisation(cluster, on, d_off), None)]
    if woken:
        end = on | host_mask(cluster, woken)
        steps.append((int(end.sum()), utilisation(cluster, end, d_on), None))
        return EndState(end, [], None, steps, None)
    floor = np.array(dpm.targets) - 1e-9 if history.dpm_descending else np.array(dpm.lows)
    if not on.any() or (utilisation(cluster, on, d_off) >= floor).any():
        return EndState(on, [], None, steps, None)
    scopes = _scopes(cluster, d_on, d_off, current)
    candidates = _standby_candidates(cluster, on)
    order = list(standby_now) + [h for h in candidates if h not in standby_now]
    picked, refusals = _pick_standby(cluster, dpm, on, order, scopes, None)
    end = on & ~host_mask(cluster, picked)
    remaining = on.copy()
    for h in picked:
        remaining[h] = False
        steps.append((int(remaining.sum()), utilisation(cluster, remaining, d_off), h))
    left = [h for h in order if end[h]]
    if left:  # the candidates left, judged at the end state
        judged = []
        for h in left:
            trial = end.copy()
            trial[h] = False
            why = _standby_refusal(cluster, dpm, trial, (on & ~end) | host_mask(cluster, [h]), scopes, h) or refusals.get(h)
            judged.append((h, why))
            if not host_override(cluster, dpm, h):
                break  # the first refused for the cluster's reasons is the limit; the rest would be too
        limit = refusal_words(cluster, dpm, judged)
    elif int(end.sum()) > 0 and len(candidates) < int(on.sum()):
        limit = "every other host that is on runs a VM that may not move"
    else:
        limit = None
    saves = [saving_estimate_w(cluster, h, end | host_mask(cluster, [h])) for h in picked]
    total = round(float(sum(x for x in saves if x is not None)), 1) if picked and None not in saves else None
    return EndState(end, picked, limit, steps, total)


__all__ = ["EndState", "PowerChoice", "band_words", "choose_power", "off_demand", "paced", "end_state", "ha_words", "headroom_ok", "saving_estimate_w", "standby_reason", "utilisation",
           "window_demand"]
