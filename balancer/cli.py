"""The `balancer` command line."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__
from .errors import BalancerError, InputError
from .errors.lines import clip_line

# The engine, the solver, the reports (matplotlib) and the sources are imported inside the commands
# that use them, so `balancer --help` and `balancer check-config` start fast (docs/benchmarks.md,
# "Start-up time"; benchmarks/startup.py).

if TYPE_CHECKING:
    from .app.evacuate import Evacuation
    from .config import Config
    from .plan import Plan
    from .plan.result import ActionResult
    from .snapshot import Snapshot

# The planners' names (balancer.engine.PLANNERS; tests/test_cli.py checks they agree).
PLANNER_NAMES = ["cp-sat", "greedy"]


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


def _finish_evacuation(evacuation: Evacuation, fmt: str, out: str | None) -> None:
    """An evacuation carried out: with --format json the plan and its results, then the outcome and exit."""
    plan, results = evacuation.plan, evacuation.results
    if fmt == "json":
        _write(json.dumps({"plan": plan.to_json_dict(), "results": [r.to_json_dict() for r in results]}, indent=2) + "\n",
               out)
    _finish_results(results, fmt)


# Report formats of `recommend` and `evacuate` (balancer/report/render.py).
PLAN_FORMATS = ["table", "json", "markdown", "html"]


class Duration(click.ParamType):
    """A duration option: 30s, 5m, 1h30m or plain seconds, as in the config."""

    name = "duration"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            return value
        try:
            from .config import parse_duration

            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < self.minimum:
            self.fail(f"must be at least {self.minimum:g} s, got {value!r}", param, ctx)
        return seconds


def _show_plan(plan: Plan, fmt: str, out: str | None, snapshot: Snapshot | None = None,
               cfg: Config | None = None, apply_hint: str | None = None) -> None:
    """Print (or write to --out) the plan in `fmt`; `snapshot` is the one the plan was made from (html needs it).
    `apply_hint`: the plan is a dry run, and this says how to carry it out."""
    from datetime import datetime, timezone

    from .config import Config
    from .report import dpm_band, render

    cfg = cfg or Config()
    dpm = cfg.dpm
    tty = out is None and sys.stdout.isatty()
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if fmt == "html" else None
    text = render(plan, snapshot, fmt, dpm_band=dpm_band(dpm.target, dpm.tolerance), color=tty,
                  width=shutil.get_terminal_size().columns if tty else None,
                  headroom=(cfg.drs.cpu_headroom, cfg.drs.mem_headroom), generated_at=generated,
                  apply_hint=None if fmt == "json" else apply_hint)
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
@click.option("--planner", type=click.Choice(PLANNER_NAMES), help="Planner [config: drs.planner, default cp-sat].")
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
    from .app.recommend import recommend_cluster, recommend_domain

    if domain_name is not None:
        from .app.oneoff import config_at
        from .report.domain_plan import DOMAIN_FORMATS, render_domain

        given = [o for o, v in (("--snapshot", snapshot_path), ("--cluster", cluster_name), ("--max-moves", max_moves),
                                ("--max-repair-moves", max_repair_moves), ("--threshold", threshold), ("--planner", planner), ("--time-limit", time_limit),
                                ("--dpm", dpm or None), ("--all-steps", all_steps or None)) if v is not None]
        if given:
            raise InputError(f"--domain plans the moves between clusters: {given[0]} does not apply to it")
        if not config_path:
            raise InputError("--domain names a balancing domain of a config: give --config")
        cfg = config_at(config_path)
        if fmt not in DOMAIN_FORMATS:
            raise InputError(f"--format {fmt}: a domain plan is shown as {', '.join(DOMAIN_FORMATS)}")
        plan = recommend_domain(cfg, domain_name)
        tty = out is None and sys.stdout.isatty()
        _write(render_domain(plan, fmt, color=tty, width=shutil.get_terminal_size().columns if tty else None), out)
        return
    rec = recommend_cluster(config_path, cluster_name, snapshot_path, threshold, max_moves, max_repair_moves, planner,
                            time_limit, dpm, all_steps)
    hint = None
    if rec.plan.actions:
        where = "" if snapshot_path else "".join(f" {o} {v}" for o, v in (("--config", config_path),
                                                                           ("--cluster", cluster_name)) if v)
        hint = (f"To carry it out: save it as JSON (the same command with --format json --out plan.json) and run "
                f"balancer apply plan.json{where}, which checks it again on a fresh snapshot first.")
    _show_plan(rec.plan, fmt, out, rec.snapshot, rec.config, hint)
    if rec.plan.status == "infeasible":
        raise SystemExit(3)


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
    from .app.evacuate import evacuate_host

    evacuation = evacuate_host(host, config_path, cluster_name, snapshot_path, execute,
                               None if execute and fmt == "json" else
                               _plan_shower(fmt, out, None if execute or snapshot_path else _EXECUTE_HINT))
    if evacuation.results is not None:
        _finish_evacuation(evacuation, fmt, out)


def _plan_shower(fmt: str, out: str | None, hint: str | None = None):
    """Shows a plan (in ``fmt``, to --out or standard output) before it is carried out or refused; ``hint``:
    a dry run, and how to carry it out."""
    return lambda plan, snapshot, cfg: _show_plan(plan, fmt, out, snapshot, cfg, hint if plan.actions else None)


_EXECUTE_HINT = "To carry it out: the same command with --execute."


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
    from rich.console import Console

    from .app.place import place_from_spec
    from .report.placement import placement_json, render_placement

    def show(p) -> None:
        if fmt != "json":
            render_placement(p, Console())
        elif not execute:
            click.echo(placement_json(p), nl=False)

    p, outcome = place_from_spec(spec_path, config_path, cluster_name, snapshot_path, execute, show)
    if not execute:
        return
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
    from .app.evacuate import evacuate_datastore as evacuate_datastore_plan

    evacuation = evacuate_datastore_plan(datastore, config_path, cluster_name, snapshot_path, execute,
                                         None if execute and fmt == "json" else
                                         _plan_shower(fmt, out, None if execute or snapshot_path else _EXECUTE_HINT))
    if evacuation.results is not None:
        _finish_evacuation(evacuation, fmt, out)


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
    from .app.exit_maintenance import exit_maintenance as exit_maintenance_now

    results = exit_maintenance_now(name, config_path, cluster_name, is_datastore)
    if fmt == "json":
        _write(json.dumps([r.to_json_dict() for r in results], indent=2) + "\n", None)
    _finish_results(results, fmt)


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@cluster_option
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the snapshot JSON.")
def snapshot(config_path, cluster_name, out) -> None:
    """Write the configured source's current snapshot as JSON."""
    from .app.snapshot import take_snapshot
    from .snapshot.io import snapshot_json

    snap = take_snapshot(config_path, cluster_name)
    _write(snapshot_json(snap), out)
    from .words import counted

    click.echo(f"wrote {out}: cluster {snap.cluster}, {counted(len(snap.hosts), 'host')}, {counted(len(snap.vms), 'VM')}, "
               f"{counted(len(snap.datastores), 'datastore')}, {counted(len(snap.rules), 'rule')}", err=True)


@cli.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file) -> None:
    """Validate a config file, and the files it names (trace, journal directory, TLS files).

    Settings that weaken security (vCenter over http, verify_tls false) get a warning line on
    standard error. Exit status: 0 when valid, 2 otherwise.
    """
    from .app.check_config import check_config as check_config_file  # defers the metrics endpoint's modules

    cfg, warnings = check_config_file(file)
    for line in warnings:
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
    from .app.apply import apply_plan_file

    applied = apply_plan_file(plan_file, config_path, cluster_name, max_age, max_moves)
    if applied.nothing_to_do is not None:
        click.echo(applied.nothing_to_do, err=True)
        if fmt == "json":
            click.echo("[]")
        return
    if fmt == "json":
        click.echo(json.dumps([r.to_json_dict() for r in applied.results], indent=2))
    _finish_results(applied.results, fmt)


def _finish_results(results: list[ActionResult], fmt: str) -> None:
    """Carried-out actions as a table (JSON is printed by the caller); exit 1 unless every one succeeded
    (a move that had already been made counts as done: applying a plan twice is not a failure)."""
    if fmt != "json":
        from rich.console import Console

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
    from .app.oneoff import config_at
    from .logs import setup_logging
    from .service import Service  # the service's modules (metrics endpoint, worker pool) only for `run`

    if once and cycles:
        raise InputError("use either --once or --cycles, not both")
    cfg = config_at(config_path)
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
    from rich.console import Console

    from .app.history import history_journal
    from .journal.render import history_data, render_history

    with history_journal(config_path, cluster) as journal:
        if fmt == "json":
            click.echo(json.dumps(history_data(journal, last, cluster), indent=2))
        else:
            render_history(journal, last, Console(width=None if sys.stdout.isatty() else 160), cluster)


@cli.command("hash-password")
@click.option("--user", "user_name", help="Print a whole users-file entry for this user (with --role).")
@click.option("--role", type=click.Choice(["viewer", "operator"]), default="viewer", show_default=True,
              help="The entry's role (with --user).")
def hash_password_cmd(user_name, role) -> None:
    """Hash a console user's password for console.users_file (read from the terminal, twice; or one line
    of standard input). The password itself is never printed nor stored."""
    from .web.auth import hash_password

    if user_name is None and click.get_current_context().get_parameter_source("role").name != "DEFAULT":
        raise InputError("--role goes with --user: the role belongs to a users-file entry (without --user only the "
                         "hash is printed)")
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise InputError("a console password has at least 8 characters")
    hashed = hash_password(password)
    if user_name:
        click.echo(f"  - name: {json.dumps(user_name)}\n    role: {role}\n    password_hash: \"{hashed}\"")
    else:
        click.echo(hashed)


@cli.command()
@click.option("--trace", help="Trace .csv.gz (vm,t000,...,t287) or a packaged day (YYYYMMDD); required unless a "
                             "scenario file names one.")
@click.option("--scenario", metavar="embedded|planetlab-cloudsim|FILE.yaml", default="embedded", show_default=True,
              help="embedded: the simulated cluster and the service's cycles; planetlab-cloudsim: the consolidation "
                   "literature's scenario (800 HP G4/G5 hosts, CloudSim's mechanics and metrics); FILE.yaml: that "
                   "scenario with the file's host types, power curves, VM types and trace (docs/evaluation.md).")
@click.option("--hosts", type=click.IntRange(1, 2000), help="Hosts in the cluster [default: 40; planetlab-cloudsim: 800; "
                                                             "embedded: at most 96].")
@click.option("--vms", type=click.IntRange(1, 10_000), help="VMs (default: one per trace row; more reuse rows).")
@click.option("--memory", type=click.Choice(["cloudsim", "configured", "vsphere"]), default="cloudsim", show_default=True,
              help="planetlab-cloudsim: memory as CloudSim models it (0 MB requested after the start), at the "
                   "VMs' configured size, or as vSphere judges it (active + idle share).")
@click.option("--interval", default="5m", show_default=True, help="Cycle interval: a multiple of 5m.")
@click.option("--policy", type=click.Choice(["ours", "greedy", "none", "balancer", "thr-mmt", "thr-mmt-ram", "dvfs"]),
              help="embedded: ours (the optimiser, default), greedy (DRS's hill-climb), none; planetlab-cloudsim: "
                   "balancer (default: the engine's plan every 5 minutes, DPM automatic), thr-mmt (THR 0.8 + "
                   "minimum migration time, Beloglazov & Buyya), thr-mmt-ram (the same, RAM counted), dvfs (first fit, no migration).")
@click.option("--dpm", type=click.Choice(["on", "off"]), default="off", show_default=True,
              help="DPM automatic (hosts to standby and back) or off.")
@click.option("--seed", type=int, default=1, show_default=True, help="Simulator seed: VM sizes, trace rows, start.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="First trace sample (0 = 00:00, 5-minute samples).")
@click.option("--steps", type=click.IntRange(min=1), help="Samples to replay (default: to the end of the trace).")
@click.option("--threshold", type=click.IntRange(1, 5), help="Migration threshold [config: drs.migration_threshold].")
@click.option("--model", type=click.Choice(["imbalance", "vm-score"]),
              help="What balancing aims at [config: drs.model]: imbalance, or vm-score (also the worst-served VMs).")
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
def simulate(trace, scenario, hosts, vms, memory, interval, policy, dpm, seed, start, steps, threshold, model, predictive,
             history, config_path, cluster_name, fmt) -> None:
    """What-if replay: a trace day through the embedded simulated cluster, balanced by a policy.

    Every 5-minute sample is measured once; every --interval a cycle of the service runs
    (collect, plan, carry out, fully automated). Prints overload minutes, migrations, imbalance,
    host-hours and energy.
    """
    # deferred to `simulate`: the simulated cluster, the service's cycle and the progress bar
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .app.oneoff import cluster_of
    from .whatif import replay, replay_spec
    from .whatif.report import render_table

    if cluster_name and not config_path:
        raise InputError("--cluster picks one of the config's clusters: use it with --config")
    # a config with clusters: the chosen cluster's tuning (its own drs / dpm overrides included)
    base = cluster_of(config_path, cluster_name)[1] if config_path else None
    if scenario != "embedded":
        from .whatif.cloudsim_policies import run_scenario

        if scenario == "planetlab-cloudsim":
            if not trace:
                raise InputError("--trace is required (a packaged day YYYYMMDD or a trace file)")
            out = run_scenario(trace, policy or "balancer", hosts or 800, vms, steps, memory, base)
        else:
            out = run_scenario(trace, policy or "balancer", hosts, vms, steps, memory, base, scenario_file=scenario)
        if fmt == "json":
            click.echo(json.dumps(out, indent=2))
        else:
            for key, value in out.items():
                click.echo(f"{key:<20} {value}")
        return
    if not trace:
        raise InputError("--trace is required (a packaged day YYYYMMDD or a trace file)")
    if click.get_current_context().get_parameter_source("memory").name != "DEFAULT":
        raise InputError("--memory is for --scenario planetlab-cloudsim or a scenario file: the embedded cluster "
                         "models its VMs' memory demand itself (docs/simulator.md)")
    policy = policy or "ours"
    if policy not in ("ours", "greedy", "none"):
        raise InputError(f"--policy {policy}: the embedded scenario's policies are ours, greedy and none")
    hosts = hosts or 40
    if hosts > 96:
        raise InputError(f"--hosts {hosts}: the embedded cluster has at most 96 hosts (a vSphere cluster's maximum)")
    spec = replay_spec(base, trace, history, None if predictive is None else predictive == "on", hosts=hosts, vms=vms,
                       interval=interval, policy=policy, dpm=dpm == "on", seed=seed, start=start, steps=steps,
                       threshold=threshold, model=model)
    err = Console(stderr=True)
    if err.is_terminal:
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
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        from .logs import ShortFormatter

        handler.setFormatter(ShortFormatter())
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


def _error(message: str) -> None:
    """The one line an error is shown as: ``error: message``, control characters escaped, at most 300
    characters (errors/limits.py), whatever the message quotes."""
    click.echo(clip_line(f"error: {message}"), err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error becomes one line on stderr and an exit status, never a traceback."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--debug"]
    if not args:  # `balancer` alone: the help, as `balancer --help` (exit 0), not a usage error
        args = ["--help"]
    _warnings_to_stderr()
    try:
        cli.main(args=args, prog_name="balancer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(2)
    except BalancerError as exc:
        if debug:
            raise
        _error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        sys.exit(1)
