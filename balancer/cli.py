"""The `balancer` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from . import __version__
from .config import Config, load_config
from .engine import PLANNERS, make_plan
from .errors import BalancerError, InputError
from .plan_options import plan_options
from .plan import Plan
from .snapshot import DatastoreState, HostState, Snapshot, load_snapshot
from .snapshot.io import snapshot_json
from .sources.abilities import CanPowerOnVM
from .sources.registry import able, kind_of


# Config -> engine options lives in balancer/plan_options.py (shared with the service).
_options = plan_options


def _config(path: str | None) -> Config:
    return load_config(path) if path else Config()


def _cluster(config_path: str | None, name: str | None) -> tuple[str, Config]:
    """The cluster a one-off command works on: --cluster NAME of the config's clusters (optional with one)."""
    from .clusters import select_cluster

    return select_cluster(_config(config_path), name)


def _check_source(config_path: str | None, snapshot_path: str | None, cluster_name: str | None,
                  execute: bool = False, execute_hint: str = "or neither, for the embedded simulated cluster") -> None:
    """The options that say what a one-off command reads fit together: InputError naming the clash."""
    if config_path and snapshot_path:
        raise InputError("use either --config or --snapshot, not both")
    if cluster_name and snapshot_path:
        raise InputError("--cluster picks one of the config's clusters: use it with --config, not --snapshot")
    if execute and snapshot_path:
        raise InputError(f"--execute acts on the cluster: use --config ({execute_hint}), not --snapshot")


def _finish_evacuation(plan: Plan, results: list, fmt: str, out: str | None) -> None:
    """An evacuation carried out: with --format json the plan and its results, then the outcome and exit."""
    if fmt == "json":
        _write(json.dumps({"plan": plan.to_json_dict(), "results": [r.to_json_dict() for r in results]}, indent=2) + "\n",
               out)
    _finish_results(results, fmt)


def _collect(name: str, cfg: Config) -> Snapshot:
    """The cluster's snapshot as the service sees it (the simulator from the service's state, read only)."""
    from .service.oneoff import collect

    return collect(name, cfg)


cluster_option = click.option("--cluster", "cluster_name", metavar="NAME",
                              help="Which of the config's clusters (needed when it has several).")


def _write(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--out {out}: cannot write: {exc.strerror}") from None
    else:
        click.echo(text, nl=False)


# Report formats of `recommend` and `evacuate` (balancer/report/render.py).
PLAN_FORMATS = ["table", "json", "markdown", "html"]


class Duration(click.ParamType):
    """A duration option: 30s, 5m, 1h30m or plain seconds, as in the config."""

    name = "duration"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value, param, ctx) -> float:
        from .config import parse_duration

        if isinstance(value, float):
            return value
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < self.minimum:
            self.fail(f"must be at least {self.minimum:g} s, got {value!r}", param, ctx)
        return seconds


def _show_plan(plan: Plan, fmt: str, out: str | None, snapshot: Snapshot | None = None,
               cfg: Config | None = None) -> None:
    """Print (or write to --out) the plan in `fmt`; `snapshot` is the one the plan was made from (html needs it)."""
    import shutil

    from .report import dpm_band, render

    dpm = (cfg or Config()).dpm
    tty = out is None and sys.stdout.isatty()
    text = render(plan, snapshot, fmt, dpm_band=dpm_band(dpm.target, dpm.tolerance), color=tty,
                  width=shutil.get_terminal_size().columns if tty else None)
    _write(text, out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="balancer")
def cli() -> None:
    """DRS-style load balancer for VMware vSphere clusters.

    With no --config and no --snapshot, commands use the embedded simulated cluster,
    whose load replays real PlanetLab traces.

    Global flag: --debug (anywhere on the command line) shows a traceback instead of the
    one-line error message.
    """


source_options = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file."),
    cluster_option,
    click.option("--snapshot", "snapshot_path", type=click.Path(dir_okay=False), help="Plan from a saved snapshot."),
]


def _with(options):
    def deco(f):
        for o in reversed(options):
            f = o(f)
        return f

    return deco


@cli.command()
@_with(source_options)
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="table", show_default=True,
              help="html: one self-contained file with per-host charts (use with --out).")
@click.option("--max-moves", type=click.IntRange(min=0),
              help="Cap on balancing moves in the plan; repairs do not count [config: drs.max_moves_per_cycle].")
@click.option("--max-repair-moves", type=click.IntRange(min=0),
              help="Cap on repair moves (hard violations, hosts above their limit) [config: drs.max_repair_moves; "
                   "default: no cap].")
@click.option("--threshold", type=click.IntRange(1, 5), help="Migration threshold 1 (mandatory only) .. 5 (aggressive).")
@click.option("--planner", type=click.Choice(sorted(PLANNERS)), help="Planner [config: drs.planner, default cp-sat].")
@click.option("--time-limit", type=Duration(minimum=0.1),
              help="Solver time limit: 3s, 1m or seconds [config: drs.time_limit].")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@click.option("--dpm", is_flag=True, help="Include DPM decisions: hosts to standby or to power on [config: dpm.automation].")
@click.option("--all-steps", is_flag=True,
              help="With DPM: plan the whole consolidation in one plan (every host that can go to standby, each "
                   "right after the moves that empty it) instead of dpm.max_standby_per_cycle hosts. Implies --dpm.")
@click.option("--domain", "domain_name", metavar="NAME",
              help="Plan the moves between the clusters of this balancing domain of the config instead "
                   "(formats table, json, markdown).")
def recommend(config_path, cluster_name, snapshot_path, fmt, max_moves, max_repair_moves, threshold, planner,
              time_limit, out, dpm, all_steps, domain_name) -> None:
    """Dry run: collect (or load) a snapshot, plan, print the plan. Nothing is changed.

    With DPM the plan also shows DPM's end state at this demand: how many hosts stay on once
    every standby step is taken, and which hosts could follow this plan's.

    With --domain NAME: every cluster of that balancing domain is collected and the plan shows
    the VMs to move from a cluster above the domain's high-water mark to one with room.

    Exit status: 0 with a plan, 2 on bad input, 3 when the mandatory rules cannot all hold.
    """
    if domain_name is not None:
        given = [o for o, v in (("--snapshot", snapshot_path), ("--cluster", cluster_name), ("--max-moves", max_moves),
                                ("--max-repair-moves", max_repair_moves), ("--threshold", threshold), ("--planner", planner), ("--time-limit", time_limit),
                                ("--dpm", dpm or None), ("--all-steps", all_steps or None)) if v is not None]
        if given:
            raise InputError(f"--domain plans the moves between clusters: {given[0]} does not apply to it")
        if not config_path:
            raise InputError("--domain names a balancing domain of a config: give --config")
        _recommend_domain(_config(config_path), domain_name, fmt, out)
        return
    _check_source(config_path, snapshot_path, cluster_name)
    name, cfg = _cluster(config_path, cluster_name)
    snap = load_snapshot(snapshot_path) if snapshot_path else _collect(name, cfg)
    history = None
    if not snapshot_path:  # the service's cluster: its cooldowns and no-going-back hold here too
        from .service.oneoff import journaled_past

        history = journaled_past(name, cfg, snap)
    options = _options(cfg, threshold, max_moves, planner, time_limit, dpm=True if dpm or all_steps else None,
                       dpm_all_steps=all_steps, max_repair_moves=max_repair_moves)
    plan = make_plan(snap, options, history)
    if options.storage is None and plan.datastores:  # Storage DRS off: say so when a datastore is past its threshold
        over = [d for d in plan.datastores if d.state == "normal" and d.utilisation_before > cfg.sdrs.space_threshold]
        if over:
            fullest = max(over, key=lambda d: d.utilisation_before)
            plan = plan.model_copy(update={"notes": [*plan.notes, (
                f"sdrs automation is off: no storage moves planned, though {len(over)} datastore(s) are above the "
                f"{100 * cfg.sdrs.space_threshold:g} % space threshold (fullest: {fullest.name} "
                f"{100 * fullest.utilisation_before:.0f} %)")]})
    _show_plan(plan, fmt, out, snap, cfg)
    if plan.status == "infeasible":
        raise SystemExit(3)


def _recommend_domain(cfg: Config, name: str, fmt: str, out: str | None) -> None:
    import shutil

    from .domains import recommend as recommend_domain
    from .report.domain import DOMAIN_FORMATS, render_domain

    if fmt not in DOMAIN_FORMATS:
        raise InputError(f"--format {fmt}: a domain plan is shown as {', '.join(DOMAIN_FORMATS)}")
    plan, _ = recommend_domain(cfg, name)
    tty = out is None and sys.stdout.isatty()
    _write(render_domain(plan, fmt, color=tty, width=shutil.get_terminal_size().columns if tty else None), out)


@cli.command()
@click.argument("host")
@_with(source_options)
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="table", show_default=True)
@click.option("--execute", is_flag=True, help="Carry out the moves, then put HOST into maintenance mode.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the plan to this file instead of standard output.")
def evacuate(host, config_path, cluster_name, snapshot_path, fmt, execute, out) -> None:
    """Plan moving every VM registered on HOST (powered-off ones too) off it, for maintenance mode.

    Only HOST's VMs move, each honouring capacity and the mandatory rules at every step. With
    --execute the moves are carried out and HOST then enters maintenance mode, only if every
    move succeeded and HOST is empty. Exit status: 0 when HOST can be (with --execute: was)
    emptied, 1 when an action failed, 2 on bad input, 3 when the rules or the room left make
    it impossible (the message names the rule).
    """
    from contextlib import ExitStack

    from .errors import InfeasibleError
    from .execute.evacuation import carry_out_evacuation, vms_left_on
    from .service.oneoff import acting

    _check_source(config_path, snapshot_path, cluster_name, execute)
    name, cfg = _cluster(config_path, cluster_name)
    with ExitStack() as stack:
        act = stack.enter_context(acting(name, cfg, "evacuate")) if execute else None
        snap = load_snapshot(snapshot_path) if snapshot_path else (act.source.snapshot() if act else _collect(name, cfg))
        if host not in snap.hosts_by_name():
            raise InputError(f"host {host!r}: not in cluster {snap.cluster}")
        plan = make_plan(snap, _options(cfg, evacuate=(host,)))
        if not (execute and fmt == "json"):
            _show_plan(plan, fmt, out, snap, cfg)
        if plan.status == "infeasible":
            raise InfeasibleError(f"cannot evacuate {host}: "
                                  + "; ".join(c.removeprefix(f"evacuating {host}: ") for c in plan.conflicts))
        left = vms_left_on(plan, host, [v.name for v in snap.vms if v.host == host])
        if left:
            raise InfeasibleError(f"cannot evacuate {host}: {len(left)} VM(s) would stay on it ({', '.join(left[:5])}); "
                                  + " ".join(plan.notes))
        if act is None:
            return
        results = act.carry_out(plan, snap, lambda source, p: carry_out_evacuation(source, p, host))
    _finish_evacuation(plan, results, fmt, out)


@cli.command()
@click.option("--vm-spec", "spec_path", required=True, type=click.Path(dir_okay=False),
              help="The VM to place: YAML or JSON (docs/placement.md).")
@_with(source_options)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--execute", is_flag=True, help="On vCenter: power the VM on at the best host (relocating it there first).")
def place(spec_path, config_path, cluster_name, snapshot_path, fmt, execute) -> None:
    """Initial placement: rank the hosts a VM may power on, with the reason and the imbalance after.

    Honours capacity minus headroom, the mandatory rules (should-rules rank), and DPM's standby
    hosts (one is woken only when no host that is on fits). Exit status: 0 with a host, 1 when
    --execute failed, 2 on bad input, 3 when the VM fits nowhere (the message says why).
    """
    from .placement import execute_placement, fail_if_impossible, load_vm_spec, placement_json, rank, render_placement

    _check_source(config_path, snapshot_path, cluster_name, execute, execute_hint="with a vCenter source")
    spec = load_vm_spec(spec_path)
    name, cfg = _cluster(config_path, cluster_name)
    if execute and CanPowerOnVM not in kind_of(cfg).abilities:
        raise InputError("--execute powers the VM on through vCenter: use a config with source "
                         + " or ".join(able(CanPowerOnVM)) + " (the embedded simulated cluster's VMs all replay traces)")
    options = _options(cfg)
    if not execute:
        snap = load_snapshot(snapshot_path) if snapshot_path else _collect(name, cfg)
        p = rank(snap, spec, options, f"vm spec {spec_path}")
        click.echo(placement_json(p), nl=False) if fmt == "json" else render_placement(p, Console())
        fail_if_impossible(p)
        return
    from .sources import open_source

    source = open_source(cfg)
    try:
        snap = source.snapshot()
        p = rank(snap, spec, options, f"vm spec {spec_path}")
        if fmt != "json":
            render_placement(p, Console())
        fail_if_impossible(p)
        outcome = execute_placement(source, p, snap)
    finally:
        source.close()
    if fmt == "json":
        click.echo(json.dumps({"placement": p.to_json_dict(), "result": outcome}, indent=2))
    else:
        click.echo(outcome)


@cli.command("evacuate-datastore")
@click.argument("datastore")
@_with(source_options)
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="table", show_default=True)
@click.option("--execute", is_flag=True, help="Carry out the storage moves, then put DATASTORE into maintenance mode.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the plan to this file instead of standard output.")
def evacuate_datastore(datastore, config_path, cluster_name, snapshot_path, fmt, execute, out) -> None:
    """Plan moving every disk on DATASTORE off it by Storage vMotion, for datastore maintenance mode.

    Only disks move (nothing is balanced meanwhile), each to a datastore its VM's host mounts,
    with room for it, honouring the VMDK and VM anti-affinity rules. With --execute the moves
    are carried out and DATASTORE then enters maintenance mode, only if every move succeeded
    and no disk is left on it. Exit status: 0 when DATASTORE can be (with --execute: was)
    emptied, 1 when an action failed, 2 on bad input, 3 when the rules or the room left make
    it impossible (the message names the rule, or the disks with no room).
    """
    from contextlib import ExitStack

    from .errors import InfeasibleError
    from .execute.evacuation import carry_out_datastore_evacuation, disks_left_on
    from .service.oneoff import acting

    _check_source(config_path, snapshot_path, cluster_name, execute)
    name, cfg = _cluster(config_path, cluster_name)
    with ExitStack() as stack:
        act = stack.enter_context(acting(name, cfg, "evacuate-datastore")) if execute else None
        snap = load_snapshot(snapshot_path) if snapshot_path else (act.source.snapshot() if act else _collect(name, cfg))
        found = next((d for d in snap.datastores if d.name == datastore), None)
        if found is None:
            known = ", ".join(d.name for d in snap.datastores[:10]) or "none"
            raise InputError(f"datastore {datastore!r}: not in cluster {snap.cluster} (its datastores: {known})")
        if found.state is DatastoreState.MAINTENANCE and execute:
            raise InputError(f"datastore {datastore} is already in maintenance")
        plan = make_plan(snap, _options(cfg, evacuate_datastores=(datastore,)))
        if not (execute and fmt == "json"):
            _show_plan(plan, fmt, out, snap, cfg)
        if plan.status == "infeasible":
            why = [c.removeprefix(f"evacuating {datastore}: ") for c in plan.conflicts]
            raise InfeasibleError(f"cannot evacuate datastore {datastore}: " + "; ".join(why[:3])
                                  + (f"; and {len(why) - 3} more" if len(why) > 3 else ""))
        left = disks_left_on(plan, datastore, snap)
        if left:
            raise InfeasibleError(f"cannot evacuate datastore {datastore}: {len(left)} disk(s) would stay on it "
                                  f"({', '.join(left[:5])}{' ...' if len(left) > 5 else ''})"
                                  + "".join(f"; {n}" for n in plan.notes if datastore in n or "disk" in n))
        if act is None:
            return
        results = act.carry_out(plan, snap, lambda source, p: carry_out_datastore_evacuation(source, p, datastore))
    _finish_evacuation(plan, results, fmt, out)


@cli.command("exit-maintenance")
@click.argument("name")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@cluster_option
@click.option("--datastore", "is_datastore", is_flag=True,
              help="NAME is a datastore (needed only when a host has the same name).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def exit_maintenance(name, config_path, cluster_name, is_datastore, fmt) -> None:
    """Take host or datastore NAME out of maintenance mode.

    A host runs VMs again (balancing then moves load onto it); a datastore takes disks again
    (Storage DRS then moves disks onto it when others pass the space threshold). Journaled like
    `apply`. Exit status: 0 when NAME is back, 1 when the action failed, 2 on bad input (NAME
    unknown, or not in maintenance).
    """
    from .execute.evacuation import carry_out_datastore_exit
    from .execute.premise import power_premise
    from .plan import PowerAction
    from .service.oneoff import acting

    cluster, cfg = _cluster(config_path, cluster_name)
    with acting(cluster, cfg, "exit-maintenance") as act:
        snap = act.source.snapshot()

        def only(power: list) -> Plan:  # the cluster's plan frame, with no action but ``power``
            return make_plan(snap, _options(cfg, no_moves=True)).model_copy(
                update={"moves": [], "suppressed": [], "notes": [], "power": power, "storage_moves": []})

        found = None if is_datastore else snap.hosts_by_name().get(name)
        if found is None:
            ds = next((d for d in snap.datastores if d.name == name), None)
            if ds is None:
                what = "datastore" if is_datastore else "host or datastore"
                raise InputError(f"{what} {name!r}: not in cluster {snap.cluster}")
            if ds.state is not DatastoreState.MAINTENANCE:
                raise InputError(f"datastore {name} is not in maintenance")
            results = act.carry_out(only([]), snap, lambda source, p: carry_out_datastore_exit(source, name))
        else:
            if found.state is HostState.ON:
                raise InputError(f"host {name} is on, not in maintenance")
            action = PowerAction(step=1, host=name, action="exit-maintenance", reason="maintenance",
                                 detail="taken out of maintenance on request")
            if why := power_premise(action, found.state, 0):  # the executor's own check, before anything is journaled
                raise InputError(why)
            results = act.carry_out(only([action]), snap)
    if fmt == "json":
        _write(json.dumps([r.to_json_dict() for r in results], indent=2) + "\n", None)
    _finish_results(results, fmt)


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@cluster_option
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the snapshot JSON.")
def snapshot(config_path, cluster_name, out) -> None:
    """Write the configured source's current snapshot as JSON."""
    snap = _collect(*_cluster(config_path, cluster_name))
    _write(snapshot_json(snap), out)
    click.echo(f"wrote {out}: cluster {snap.cluster}, {len(snap.hosts)} hosts, {len(snap.vms)} VMs, "
               f"{len(snap.datastores)} datastores, {len(snap.rules)} rules", err=True)


@cli.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file) -> None:
    """Validate a config file, and the files it names (trace, journal directory, TLS files).

    Settings that weaken security (vCenter over http, verify_tls false) get a warning line on
    standard error. Exit status: 0 when valid, 2 otherwise.
    """
    from .config_check import check_config_files

    cfg = load_config(file)
    for line in check_config_files(cfg, f"config {file}"):
        click.echo(f"warning: {line}", err=True)
    if cfg.clusters is not None:
        names = ", ".join(f"{n} ({c.source}, automation {c.drs.automation}, Storage DRS {c.sdrs.automation})"
                          for n, c in cfg.cluster_configs())
        domains = "".join(f"; domain {d.name}: {', '.join(d.clusters)}, cross_cluster {d.cross_cluster}"
                          for d in cfg.domains)
        click.echo(f"{file}: ok ({len(cfg.clusters)} clusters: {names}{domains})")
        return
    click.echo(f"{file}: ok (source {cfg.source}, automation {cfg.drs.automation}, "
               f"threshold {cfg.drs.migration_threshold}, DPM {cfg.dpm.automation}, Storage DRS {cfg.sdrs.automation})")


@cli.command()
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@cluster_option
@click.option("--max-age", type=Duration(), default="15m", show_default=True,
              help="Refuse a plan whose snapshot is older than this (5m, 1h, or seconds), measured on the source's clock.")
@click.option("--max-moves", type=click.IntRange(min=0),
              help="Refuse a plan with more moves than this, not counting those that empty a host "
                   "[config: drs.max_moves_per_cycle].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def apply(plan_file, config_path, cluster_name, max_age, max_moves, fmt) -> None:
    """Carry out a saved plan after re-validating it against a fresh snapshot.

    The plan is refused (exit 2) when it has no collection time or is older than --max-age, or
    when, replayed on the fresh snapshot, a step would put a host above its capacity limit or
    break a mandatory rule. Moves whose premise no longer holds (the VM moved, the target left
    service) are skipped. Exit status: 0 when every action succeeded, 1 otherwise, 2 on bad input.

    A domain plan (`recommend --domain --format json`) is carried out move by move, each re-checked
    on fresh snapshots of its two clusters; --config must name its domain.
    """
    from .execute import check_plan_against, check_plan_age, check_plan_steps
    from .service.oneoff import acting

    from .plan.domain import is_domain_plan, parse_domain_plan
    from .validation import read_json_file

    data = read_json_file(Path(plan_file), f"plan {plan_file}")
    if is_domain_plan(data):
        if cluster_name:
            raise InputError(f"plan {plan_file} is a domain plan: --cluster does not apply to it")
        if not config_path:
            raise InputError(f"plan {plan_file} is a domain plan: give the --config that names its domain")
        from .domains import apply as apply_domain

        results = apply_domain(_config(config_path), parse_domain_plan(data, f"plan {plan_file}"), max_age,
                               f"plan {plan_file}", max_moves)
        if not results:
            click.echo(f"plan {plan_file}: nothing to do (no moves between clusters)", err=True)
            if fmt == "json":
                click.echo("[]")
            return
        if fmt == "json":
            click.echo(json.dumps([r.to_json_dict() for r in results], indent=2))
        _finish_results(results, fmt)
        return
    from .plan import parse_plan

    plan = parse_plan(data, f"plan {plan_file}")
    name, cfg = _cluster(config_path, cluster_name)
    expected = {name, kind_of(cfg).cluster_name(cfg)}
    if plan.cluster not in expected:
        raise InputError(f"plan {plan_file}: made for cluster {plan.cluster!r}, not {name!r}")
    with acting(name, cfg, "apply") as act:
        source = act.source
        fresh = source.snapshot()
        check_plan_against(fresh, plan, f"plan {plan_file}")
        check_plan_age(fresh, plan, max_age, f"plan {plan_file}")
        check_plan_steps(fresh, plan, _options(cfg, max_moves=max_moves), f"plan {plan_file}")
        if not plan.actions:
            click.echo(f"plan {plan_file}: nothing to do (no moves, no host actions)", err=True)
            if fmt == "json":
                click.echo("[]")
            return
        results = act.carry_out(plan, fresh)
    if fmt == "json":
        click.echo(json.dumps([r.to_json_dict() for r in results], indent=2))
    _finish_results(results, fmt)


def _finish_results(results, fmt: str) -> None:
    """Carried-out actions as a table (JSON is printed by the caller); exit 1 unless every one succeeded
    (a move that had already been made counts as done: applying a plan twice is not a failure)."""
    if fmt != "json":
        from .report.table import render_results

        render_results(results, Console())
    if not all(r.done for r in results):
        raise SystemExit(1)


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--once", is_flag=True, help="Run one cycle per cluster, then exit.")
@click.option("--cycles", type=click.IntRange(min=1), help="Run N cycles per cluster, then exit.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="One line per event on standard error, as text or JSON.")
def run(config_path, once, cycles, log_format) -> None:
    """The service: a cycle per cluster every drs.interval (collect, plan, act by automation level).

    Every cycle, plan and action goes to the journal; metrics are served on metrics.listen
    (/metrics, /healthz). SIGTERM or Ctrl-C stops it cleanly (exit 0). With --once or --cycles
    it exits when done: 0 when every cycle succeeded, 1 otherwise.
    """
    from .logs import setup_logging
    from .service import Service

    if once and cycles:
        raise InputError("use either --once or --cycles, not both")
    cfg = _config(config_path)
    setup_logging(log_format)
    code = Service(cfg, cycles=1 if once else cycles).run()
    if code:
        raise SystemExit(code)


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file (for journal.path).")
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True, help="How many cycles to show.")
@click.option("--cluster", help="Only this cluster's cycles.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def history(config_path, last, cluster, fmt) -> None:
    """Print the journal: the last cycles with their plans, actions and outcomes."""
    from .journal import open_journal
    from .journal.render import history_data, render_history

    journal = open_journal(_config(config_path).journal)
    try:
        if cluster is not None and cluster not in journal.clusters():
            known = journal.clusters()
            raise InputError(f"--cluster {cluster}: the journal has no cycles of this cluster"
                             + (f" (it has: {', '.join(known)})" if known else ""))
        if fmt == "json":
            click.echo(json.dumps(history_data(journal, last, cluster), indent=2))
        else:
            render_history(journal, last, Console(width=None if sys.stdout.isatty() else 160), cluster)
    finally:
        journal.close()


@cli.command()
@click.option("--trace", required=True, help="Trace .csv.gz (vm,t000,...,t287) or a packaged day (YYYYMMDD).")
@click.option("--hosts", type=click.IntRange(1, 96), default=40, show_default=True, help="Hosts in the cluster.")
@click.option("--vms", type=click.IntRange(1, 10_000), help="VMs (default: one per trace row; more reuse rows).")
@click.option("--interval", default="5m", show_default=True, help="Cycle interval: a multiple of 5m.")
@click.option("--policy", type=click.Choice(["ours", "greedy", "none"]), default="ours", show_default=True,
              help="ours: the optimiser; greedy: DRS's hill-climb (the baseline); none: no balancing.")
@click.option("--dpm", type=click.Choice(["on", "off"]), default="off", show_default=True,
              help="DPM automatic (hosts to standby and back) or off.")
@click.option("--seed", type=int, default=1, show_default=True, help="Simulator seed: VM sizes, trace rows, start.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="First trace sample (0 = 00:00, 5-minute samples).")
@click.option("--steps", type=click.IntRange(min=1), help="Samples to replay (default: to the end of the trace).")
@click.option("--threshold", type=click.IntRange(1, 5), help="Migration threshold [config: drs.migration_threshold].")
@click.option("--predictive", type=click.Choice(["on", "off"]),
              help="Plan on each VM's forecast for the next hour too [config: drs.predictive].")
@click.option("--history", "history", metavar="DAY,DAY",
              help="Trace days (or files) before this one giving the VMs' daily profiles a past, oldest first "
                   "(default with --predictive on and a packaged day: the packaged days before it).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Take the drs and dpm tuning from this config (its source is not used).")
@click.option("--cluster", "cluster_name", metavar="NAME",
              help="With --config: whose tuning, of the config's clusters (needed when it has several).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def simulate(trace, hosts, vms, interval, policy, dpm, seed, start, steps, threshold, predictive, history,
             config_path, cluster_name, fmt) -> None:
    """What-if replay: a trace day through the embedded simulated cluster, balanced by a policy.

    Every 5-minute sample is measured once; every --interval a cycle of the service runs
    (collect, plan, carry out, fully automated). Prints overload minutes, migrations, imbalance,
    host-hours and energy.
    """
    from .simulate import ReplaySpec, replay
    from .simulate.report import render_table
    from .sources.sim.traces import packaged_days

    if cluster_name and not config_path:
        raise InputError("--cluster picks one of the config's clusters: use it with --config")
    # a config with clusters: the chosen cluster's tuning (its own drs / dpm overrides included)
    base = _cluster(config_path, cluster_name)[1] if config_path else None
    predicting = predictive == "on" if predictive else bool(base and base.drs.predictive)
    if history is not None and not predicting:
        raise InputError("--history gives the VMs' daily profiles a past: use it with --predictive on")
    if history is not None:
        days = tuple(d.strip() for d in history.split(",") if d.strip())
    else:  # the packaged days before this one
        days = tuple(d for d in packaged_days() if trace in packaged_days() and d < trace) if predicting else ()
    spec = ReplaySpec(trace=trace, hosts=hosts, vms=vms, interval=interval, policy=policy, dpm=dpm == "on",
                      seed=seed, start=start, steps=steps, threshold=threshold,
                      predictive=None if predictive is None else predictive == "on", history=days)
    err = Console(stderr=True)
    if err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("replaying {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task(f"{trace} ({policy}, DPM {dpm})", total=None)
            result = replay(spec, base, on_step=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        result = replay(spec, base)
    if fmt == "json":
        click.echo(json.dumps(result.to_json_dict(), indent=2))
    else:
        render_table(result, Console(width=None if sys.stdout.isatty() else 120))


def _warnings_to_stderr() -> None:
    """Until a command sets up its own logging (`run`), warnings are one line each: ``warning: ...``."""
    import logging

    from .logs import ShortFormatter

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(ShortFormatter())
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error becomes one line on stderr and an exit status, never a traceback."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--debug"]
    _warnings_to_stderr()
    try:
        cli.main(args=args, prog_name="balancer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except BalancerError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if debug:
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        sys.exit(1)
