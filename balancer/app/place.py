"""Initial placement of a VM, for `balancer place` and the service's `POST /place`: read a VM spec, rank the
hosts (the engine's placement), and on vCenter power the VM on at the best host.

The ranking itself is the engine's (engine/compute/placement.py); this module reads the spec file
(YAML or JSON), checks it against the cluster and carries out ``--execute``; report/placement.py shows
the answer. ``place_request`` answers POST /place on the clusters as the service last collected them
(the VMs' recent demand the service plans on; nothing is carried out). One cluster: ``POST /place``;
several: ``POST /place?cluster=NAME``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs

from ..config import parse_yaml_text
from ..config.plan_options import plan_options
from ..engine import PlanOptions
from ..engine.compute.placement import place_vm, spec_problem
from ..errors import InfeasibleError, InputError, SourceError
from ..errors.limits import MAX_VM_SPEC_BYTES, clip_line, quote
from ..errors.validation import parse_json_text, read_input_file, validate_model
from ..plan import Imbalance, Plan, PowerAction, ResourcePair
from ..plan.placement import Placement
from ..snapshot import Snapshot
from ..snapshot.vmspec import VmSpec
from ..sources.abilities import CanPowerOnVM, has
from ..sources.registry import able, kind_of, open_source
from .oneoff import check_source, cluster_of, journaled_past, snapshot_of

if TYPE_CHECKING:
    from ..config import Config
    from ..service.cycle import ClusterCycle

log = logging.getLogger("balancer.place")


def parse_vm_spec(data: Any, what: str) -> VmSpec:
    return validate_model(VmSpec, data, what, container="a mapping", strict=True)


def load_vm_spec(path: str | Path) -> VmSpec:
    """A VM spec file: JSON (``.json``) or YAML; InputError (one line) naming the bad item."""
    path = Path(path)
    what = f"vm spec {path}"
    text = read_input_file(path, what, MAX_VM_SPEC_BYTES)
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


def fail_if_impossible(p: Placement) -> None:
    if p.status == "impossible":
        raise InfeasibleError(f"cannot place {p.vm}: {p.why_not or 'no host fits'}")


def execute_placement(source: Any, p: Placement, snapshot: Snapshot) -> str:
    """Power the VM on at the best host through the source (vCenter), first moving its disks the placement
    puts elsewhere (with the relocation); a one-line outcome, or SourceError."""
    best = p.best
    assert best is not None
    vm = snapshot.vms_by_name().get(p.vm)
    if vm is None:
        raise InputError(f"VM {p.vm}: not in cluster {p.cluster}: --execute powers on a VM the cluster has "
                         "(create it powered off first)")
    if not has(source, CanPowerOnVM):
        raise InputError("--execute powers the VM on through vCenter: use a config with source vcenter")
    if best.power_on:
        zero = ResourcePair(cpu=0.0, mem=0.0)
        plan = Plan(cluster=p.cluster, snapshot_digest="", imbalance=Imbalance(before=zero, after=zero),
                    power=[PowerAction(step=1, host=best.host, action="power-on", reason="capacity",
                                       detail=f"woken to power on {p.vm}: no host that is on fits it")])
        results = source.execute(plan)
        if not all(r.done for r in results):
            raise SourceError(f"powering on host {best.host} for {p.vm} failed: "
                              + "; ".join(r.message for r in results if r.message))
    moves = {d.disk: d.datastore for d in p.disks if d.moved_from}  # its disks not where the placement wants them
    return source.power_on_vm(p.vm, best.host, moves) if moves else source.power_on_vm(p.vm, best.host)


def with_journaled_growth(name: str, cfg: "Config", snap: Snapshot) -> Snapshot:
    """``snap`` with its thin disks' growth from the trend the service journaled (``sdrs.growth_horizon`` on;
    docs/storage.md), as the service's cycles and POST /place judge the datastores."""
    if cfg.sdrs.growth_horizon <= 0:
        return snap
    from ..engine.storage.growth import with_trends

    past = journaled_past(name, cfg, snap)
    return with_trends(snap, past.datastore_growth) if past is not None else snap


def place_from_spec(spec_path: str, config_path: str | None, cluster_name: str | None, snapshot_path: str | None,
                    execute: bool, show: Callable[[Placement], None]) -> tuple[Placement, str | None]:
    """`balancer place`: the hosts ranked for the VM of the spec file (``show`` gets them first);
    InfeasibleError when it fits nowhere; with ``execute``, the VM powered on at the best host (the outcome)."""
    check_source(config_path, snapshot_path, cluster_name, execute, execute_hint="with a vCenter source")
    spec = load_vm_spec(spec_path)
    name, cfg = cluster_of(config_path, cluster_name)
    if execute and CanPowerOnVM not in kind_of(cfg).abilities:
        raise InputError("--execute powers the VM on through vCenter: use a config with source "
                         + " or ".join(able(CanPowerOnVM)) + " (the embedded simulated cluster's VMs all replay traces)")
    options = plan_options(cfg)
    if not execute:
        snap = snapshot_of(name, cfg, snapshot_path)
        p = rank(snap if snapshot_path else with_journaled_growth(name, cfg, snap), spec, options, f"vm spec {spec_path}")
        show(p)
        fail_if_impossible(p)
        return p, None
    source = open_source(cfg)
    try:
        snap = source.snapshot()
        p = rank(with_journaled_growth(name, cfg, snap), spec, options, f"vm spec {spec_path}")
        show(p)
        fail_if_impossible(p)
        return p, execute_placement(source, p, snap)
    finally:
        source.close()


def place_request(runners: Sequence["ClusterCycle"], body: bytes, query: str) -> tuple[int, dict]:
    """(HTTP status, JSON answer): 200 with a placement, 409 when the VM fits nowhere (the placement
    says why), 400 on a bad spec or cluster, 503 before the cluster's first collection."""
    try:
        clusters = parse_qs(query).get("cluster", [])
        by_name = {r.name: r for r in runners}
        if len(clusters) > 1:
            raise InputError("cluster: give one")
        if clusters:
            runner = by_name.get(clusters[0])
            if runner is None:
                raise InputError(f"cluster {quote(clusters[0])}: no such cluster (clusters: {', '.join(by_name)})")
        elif len(runners) == 1:
            runner = runners[0]
        else:
            raise InputError(f"the service balances {len(runners)} clusters ({', '.join(by_name)}): "
                             "choose one with ?cluster=NAME")
        seen = runner.last_seen
        if seen is None:
            return 503, {"error": f"cluster {runner.name}: not collected yet (the first cycle has not planned)"}
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("vm spec: not UTF-8") from None
        spec = parse_vm_spec(parse_json_text(text, "vm spec"), "vm spec")
        snap, vm_demand = seen
        options = runner.plan_options()  # the config's, with the host health the API set
        placement = rank(snap, spec, options, vm_demand=vm_demand)
    except InputError as exc:
        return 400, {"error": clip_line(str(exc))}
    except Exception as exc:  # noqa: BLE001 - the endpoint answers, the service stays up
        return 500, {"error": clip_line(f"internal error: {type(exc).__name__}: {exc}")}
    return (200 if placement.status == "ok" else 409), placement.to_json_dict()


__all__ = ["execute_placement", "fail_if_impossible", "load_vm_spec", "parse_vm_spec", "place_from_spec", "place_request",
           "rank"]
