"""`balancer place` and `POST /place`: read a VM spec, rank the hosts (the engine's placement), show
the answer, and on vCenter power the VM on at the best host.

The ranking itself is the engine's (engine/compute/placement.py); this module reads the spec file
(YAML or JSON), checks it against the cluster, renders the table, and carries out ``--execute``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.table import Table

from .engine import PlanOptions
from .engine.compute.placement import place_vm, spec_problem
from .errors import InfeasibleError, InputError, SourceError
from .plan.placement import Placement
from .snapshot import Snapshot
from .snapshot.vmspec import VmSpec
from .sources.abilities import CanPowerOnVM, has
from .validation import parse_json_text, read_input_file, validate_model

log = logging.getLogger("balancer.place")


def parse_vm_spec(data: Any, what: str) -> VmSpec:
    return validate_model(VmSpec, data, what, container="a mapping", strict=True)


def load_vm_spec(path: str | Path) -> VmSpec:
    """A VM spec file: JSON (``.json``) or YAML; InputError (one line) naming the bad item."""
    from .config import parse_yaml_text

    path = Path(path)
    what = f"vm spec {path}"
    text = read_input_file(path, what)
    if path.suffix.lower() == ".json":
        return parse_vm_spec(parse_json_text(text, what), what)
    return validate_model(VmSpec, parse_yaml_text(text, what), what, container="a mapping", yaml=True)


def rank(snapshot: Snapshot, spec: VmSpec, options: PlanOptions, what: str = "vm spec",
         vm_demand: Mapping[str, tuple[float, float]] | None = None) -> Placement:
    """The engine's ranking, after checking the spec against the cluster (InputError when it does not match).

    ``vm_demand``: the VMs' recent demand (the service's), planned on as the service's cycles do."""
    problem = spec_problem(snapshot, spec)
    if problem:
        raise InputError(f"{what}: {problem}")
    return place_vm(snapshot, spec, options, vm_demand)


def render_placement(p: Placement, console: Console) -> None:
    where = f" (registered on {p.registered_on}, powered off)" if p.registered_on else ""
    console.print(f"[bold]Placement of {p.vm}[/bold]{where} in {p.cluster}: "
                  f"{p.load.cpu:.0f} MHz, {p.load.mem:.0f} MB; imbalance now CPU {p.imbalance_before.cpu:.3f}, "
                  f"memory {p.imbalance_before.mem:.3f}")
    if p.hosts:
        t = Table(title="Hosts, best first", show_header=True, header_style="bold")
        for col, just in [("rank", "right"), ("host", "left"), ("CPU", "right"), ("memory", "right"),
                          ("imbalance after", "right"), ("note", "left")]:
            t.add_column(col, justify=just)
        for c in p.hosts:
            note = []
            if c.power_on:
                note.append("power on from standby: no host that is on fits")
            if c.should_rules_broken:
                note.append("breaks should-rule " + ", ".join(c.should_rules_broken))
            t.add_row(str(c.rank), c.host, f"{100 * c.cpu_before:.0f} % → {100 * c.cpu_after:.0f} %",
                      f"{100 * c.mem_before:.0f} % → {100 * c.mem_after:.0f} %",
                      f"{c.imbalance_after.cpu:.3f} / {c.imbalance_after.mem:.3f}", "; ".join(note))
        console.print(t)
    else:
        console.print(f"[bold red]impossible:[/bold red] {p.why_not}")
    if p.rejected:
        t = Table(title="Hosts it may not go to", show_header=True, header_style="bold")
        t.add_column("host")
        t.add_column("why not")
        for r in p.rejected:
            t.add_row(r.host, r.why)
        console.print(t)


def placement_json(p: Placement) -> str:
    return json.dumps(p.to_json_dict(), indent=2) + "\n"


def fail_if_impossible(p: Placement) -> None:
    if p.status == "impossible":
        raise InfeasibleError(f"cannot place {p.vm}: {p.why_not or 'no host fits'}")


def execute_placement(source: Any, p: Placement, snapshot: Snapshot) -> str:
    """Power the VM on at the best host through the source (vCenter); a one-line outcome, or SourceError."""
    best = p.best
    assert best is not None
    vm = snapshot.vms_by_name().get(p.vm)
    if vm is None:
        raise InputError(f"VM {p.vm}: not in cluster {p.cluster}: --execute powers on a VM the cluster has "
                         "(create it powered off first)")
    if not has(source, CanPowerOnVM):
        raise InputError("--execute powers the VM on through vCenter: use a config with source vcenter")
    if best.power_on:
        from .plan import PowerAction
        from .plan.model import Imbalance, Plan, ResourcePair

        zero = ResourcePair(cpu=0.0, mem=0.0)
        plan = Plan(cluster=p.cluster, snapshot_digest="", imbalance=Imbalance(before=zero, after=zero),
                    power=[PowerAction(step=1, host=best.host, action="power-on", reason="capacity",
                                       detail=f"woken to power on {p.vm}: no host that is on fits it")])
        results = source.execute(plan)
        if not all(r.done for r in results):
            raise SourceError(f"powering on host {best.host} for {p.vm} failed: "
                              + "; ".join(r.message for r in results if r.message))
    return source.power_on_vm(p.vm, best.host)


__all__ = ["execute_placement", "fail_if_impossible", "load_vm_spec", "parse_vm_spec", "placement_json", "rank",
           "render_placement"]
