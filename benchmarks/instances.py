"""Generated repair instances: clusters whose placement breaks hard obligations and the headroom limit.

Not a test and not part of the product: the scale benchmark (benchmarks/repair.py) and the property
tests (tests/test_repair_properties.py) draw their clusters here. The shape follows published VM
placement repair benchmarks: heterogeneous hosts, VMs of a few sizes, a share of the VMs in
anti-affinity groups of 2-8 VMs, VM groups that must run on one of a set of hosts, and a placement
that was valid until something changed.

Two ways to break a valid placement (``shape``):

- ``demand``: the CPU demand of the VMs on a share of the hosts rises until those hosts stand
  between their headroom limit and 20 % above their physical capacity (the published benchmarks'
  "load spike"). The cluster as a whole keeps room, so a repair is expected to exist, but none is
  known in advance.
- ``displace``: VMs are moved away from a valid placement at the final demands -- onto hosts until
  they are above their limit, onto a host running a member of their anti-affinity group, outside
  their host group, onto hosts now in maintenance. Moving them back is a repair, so one exists for
  certain (the *witness*).

``repair_instance`` returns a snapshot dict (docs/snapshot-format.md, version 3) and the witness:
each VM's host in a valid placement (``displace``; empty for ``demand``).
"""

from __future__ import annotations

import random

HOST_KINDS = [(76800, 524288), (57600, 393216), (115200, 1048576), (44800, 262144)]  # MHz, MB
VM_KINDS = [(2, 4096, 0.40), (4, 16384, 0.35), (8, 32768, 0.20), (16, 65536, 0.05)]  # vCPUs, MB, share


def repair_instance(n_hosts: int, n_vms: int, seed: int = 1, anti_share: float = 0.0, host_rules: bool = True,
                    over_share: float = 0.1, shape: str = "demand", fill: float = 0.55, maintenance: int = 0,
                    headroom: float = 0.10, affinity_share: float = 0.0) -> tuple[dict, dict[str, str]]:
    """A snapshot dict; see the module doc. ``anti_share``: share of the VMs in anti-affinity groups;
    ``over_share``: share of the hosts pushed above their limit; ``fill``: the valid placement's mean
    utilisation of capacity minus headroom; ``maintenance``: hosts in maintenance with VMs on them
    (``displace`` only); ``affinity_share``: share of the VMs in mandatory affinity pairs (placed together;
    ``displace`` splits a tenth of them)."""
    rng = random.Random(seed)
    hosts = []
    for i in range(n_hosts):
        cpu, mem = HOST_KINDS[rng.randrange(len(HOST_KINDS))]
        hosts.append({"name": f"esx{i:04d}", "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": "on"})
    limit = [(h["cpu_capacity_mhz"] * (1 - headroom), h["mem_capacity_mb"] * (1 - headroom)) for h in hosts]
    in_service = list(range(n_hosts - maintenance)) if shape == "displace" else list(range(n_hosts))
    room = (sum(limit[h][0] for h in in_service), sum(limit[h][1] for h in in_service))

    # VMs sized so the valid placement fills ``fill`` of the in-service hosts' limits
    kinds = rng.choices(VM_KINDS, weights=[k[2] for k in VM_KINDS], k=n_vms)
    mem_use = [k[1] * rng.uniform(0.3, 0.9) for k in kinds]
    cpu_raw = [k[0] * rng.uniform(200, 1800) for k in kinds]
    cpu_scale = fill * room[0] / max(sum(cpu_raw), 1.0)
    mem_scale = min(1.0, fill * room[1] / max(sum(mem_use), 1.0))
    # (at most 2,400 MHz per vCPU: a spike of up to 2.2 x stays within what the vCPUs can use)
    vms = [{"name": f"vm{j:05d}", "host": "", "vcpus": k[0], "mem_mb": k[1],
            "cpu_demand_mhz": round(min(c * cpu_scale, 2400.0 * k[0]), 1), "mem_demand_mb": round(m * mem_scale, 1)}
           for j, (k, c, m) in enumerate(zip(kinds, cpu_raw, mem_use))]

    # rules: anti-affinity groups of 2-8 VMs over ``anti_share`` of the VMs; VM groups bound to host groups
    order = list(range(n_vms))
    rng.shuffle(order)
    widest = max(2, min(8, len(in_service) // 3))
    anti: list[list[int]] = []
    i, n_anti = 0, int(anti_share * n_vms)
    while i + 1 < n_anti:
        size = min(rng.randint(2, widest), n_anti - i)
        if size >= 2:
            anti.append(order[i:i + size])
        i += size
    bound_to: dict[int, list[int]] = {}  # vm -> hosts it must run on
    host_groups: dict[str, list[str]] = {}
    vm_groups: dict[str, list[str]] = {}
    rules: list[dict] = []
    if host_rules and len(in_service) >= 8:
        n_groups = max(1, min(20, len(in_service) // 8))
        span = max(widest + 2, len(in_service) // 5)
        group_hosts = []
        for g in range(n_groups):
            members = sorted(rng.sample(in_service, min(span, len(in_service))))
            group_hosts.append(members)
            host_groups[f"hg{g:02d}"] = [hosts[h]["name"] for h in members]
        # about a tenth of the VMs: whole anti-affinity groups, or single VMs, bound to one host group
        picks = rng.sample(range(len(anti)), len(anti) // 10) if anti else []
        singles = [v for v in order[i:] if rng.random() < 0.1]
        chosen = [anti[p] for p in picks] + [[v] for v in singles]
        for k, group in enumerate(chosen):
            g = k % n_groups
            for v in group:
                bound_to[v] = group_hosts[g]
                vm_groups.setdefault(f"vg{g:02d}", []).append(vms[v]["name"])
        for g in range(n_groups):
            if f"vg{g:02d}" in vm_groups:
                rules.append({"name": f"on-hg{g:02d}", "type": "vm-host", "vm_group": f"vg{g:02d}",
                              "host_group": f"hg{g:02d}", "affine": True, "mandatory": True})
    for k, group in enumerate(anti):
        rules.append({"name": f"apart{k:05d}", "type": "vm-anti-affinity", "vms": [vms[v]["name"] for v in group]})

    # the valid placement: hardest VMs first (bound, in groups, large), each on a host with room
    partners = {v: set(g) - {v} for g in anti for v in g}
    load = [[0.0, 0.0] for _ in hosts]
    where = [-1] * n_vms

    def fits(v: int, h: int) -> bool:
        return (load[h][0] + vms[v]["cpu_demand_mhz"] <= limit[h][0]
                and load[h][1] + vms[v]["mem_demand_mb"] <= limit[h][1]
                and not any(where[p] == h for p in partners.get(v, ())))

    def put(v: int, h: int) -> None:
        where[v] = h
        load[h][0] += vms[v]["cpu_demand_mhz"]
        load[h][1] += vms[v]["mem_demand_mb"]

    hard_first = sorted(range(n_vms), key=lambda v: (v not in bound_to, v not in partners, -vms[v]["mem_mb"], v))
    for v in hard_first:
        options = bound_to.get(v, in_service)
        tries = rng.sample(options, min(24, len(options)))
        h = next((h for h in tries if fits(v, h)), None)
        if h is None:  # the emptiest host that fits
            ranked = sorted(options, key=lambda h: max(load[h][0] / limit[h][0], load[h][1] / limit[h][1]))
            h = next((h for h in ranked if fits(v, h)), None)
        if h is None:  # no room under the rules: this VM leaves the instance
            continue
        put(v, h)
    # mandatory affinity pairs among the VMs in no other rule: the second joins the first where it fits
    pairs: list[tuple[int, int]] = []
    free = [v for v in order if v not in partners and v not in bound_to and where[v] >= 0]
    for a, b in zip(free[0:int(affinity_share * n_vms):2], free[1:int(affinity_share * n_vms):2]):
        h = where[a]
        if where[b] != h:
            if not fits(b, h):
                continue
            load[where[b]][0] -= vms[b]["cpu_demand_mhz"]
            load[where[b]][1] -= vms[b]["mem_demand_mb"]
            put(b, h)
        pairs.append((a, b))
    for k, (a, b) in enumerate(pairs):
        rules.append({"name": f"together{k:05d}", "type": "vm-affinity", "vms": [vms[a]["name"], vms[b]["name"]]})
    keep = [v for v in range(n_vms) if where[v] >= 0]
    witness = {vms[v]["name"]: hosts[where[v]]["name"] for v in keep}

    if shape == "demand":
        # a load spike: the VMs on a share of the hosts demand more CPU, up to 20 % above capacity
        spiked = rng.sample(in_service, max(1, int(round(over_share * n_hosts)))) if over_share > 0 else []
        for h in spiked:
            here = [v for v in keep if where[v] == h]
            now = load[h][0]
            if not here or now <= 0:
                continue
            goal = hosts[h]["cpu_capacity_mhz"] * rng.uniform(0.92, 1.2)
            factor = min(max(goal / now, 1.0), 2.2)  # (a host with few VMs stays below the goal)
            for v in here:
                vms[v]["cpu_demand_mhz"] = round(min(vms[v]["cpu_demand_mhz"] * factor, 9000.0 * vms[v]["vcpus"]), 1)
        witness = {}
    elif shape == "displace":
        targets = rng.sample(in_service, max(1, int(round(over_share * n_hosts)))) if over_share > 0 else []
        moved: set[int] = set()
        for h in targets:  # move VMs onto h until it is above its limit
            others = [v for v in keep if where[v] != h and v not in moved]
            rng.shuffle(others)
            for v in others:
                if load[h][0] > limit[h][0] * rng.uniform(1.0, 1.15):
                    break
                load[where[v]][0] -= vms[v]["cpu_demand_mhz"]
                load[where[v]][1] -= vms[v]["mem_demand_mb"]
                put(v, h)
                moved.add(v)
        for g in anti[: max(1, len(anti) // 10)]:  # a member onto a partner's host
            v, p = g[0], g[1]
            if where[v] >= 0 and where[p] >= 0:
                where[v] = where[p]
        for a, b in pairs[:: 10]:  # an affinity pair split
            elsewhere = [h for h in in_service if h != where[a]]
            if elsewhere:
                where[b] = rng.choice(elsewhere)
        for v in [v for v in bound_to if where[v] >= 0][:: 10]:  # outside its host group
            outside = [h for h in in_service if h not in bound_to[v]]
            if outside:
                where[v] = rng.choice(outside)
        for h in range(n_hosts - maintenance, n_hosts):  # hosts now in maintenance, with VMs on them
            hosts[h]["state"] = "maintenance"
            for v in rng.sample(keep, min(len(keep), max(1, n_vms // max(n_hosts, 1)))):
                where[v] = h
    else:
        raise ValueError(f"shape: {shape!r} is not demand or displace")

    out_vms = []
    for v in keep:
        vm = dict(vms[v])
        vm["host"] = hosts[where[v]]["name"]
        out_vms.append(vm)
    kept = {vm["name"] for vm in out_vms}
    rules = [r for r in rules if r["type"] != "vm-anti-affinity" or all(n in kept for n in r["vms"])]
    vm_groups = {g: [n for n in names if n in kept] for g, names in vm_groups.items()}
    snap = {"version": 3, "cluster": f"repair-{n_hosts}x{n_vms}-s{seed}", "hosts": hosts, "vms": out_vms,
            "vm_groups": vm_groups, "host_groups": host_groups, "rules": rules}
    return snap, witness


__all__ = ["repair_instance"]
