"""The `balancer` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from . import __version__
from .config import Config, load_config
from .engine import PLANNERS, PlanOptions, make_plan
from .errors import BalancerError, InputError
from .plan import Plan, load_plan, plan_json
from .snapshot import Snapshot, load_snapshot
from .snapshot.io import snapshot_json


def _options(cfg: Config, threshold: int | None, max_moves: int | None, planner: str = "cp-sat",
             time_limit: float | None = None) -> PlanOptions:
    drs = cfg.drs
    return PlanOptions(
        threshold=threshold if threshold is not None else drs.migration_threshold,
        max_moves=max_moves if max_moves is not None else drs.max_moves_per_cycle,
        cpu_headroom=drs.cpu_headroom,
        mem_headroom=drs.mem_headroom,
        time_limit_s=time_limit if time_limit is not None else drs.time_limit,
        planner=planner,
    )


def _config(path: str | None) -> Config:
    return load_config(path) if path else Config()


def _collect(cfg: Config) -> Snapshot:
    from .sources import open_source

    source = open_source(cfg)
    try:
        return source.snapshot()
    finally:
        source.close()


def _write(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--out {out}: cannot write: {exc.strerror}") from None
    else:
        click.echo(text, nl=False)


def _show_plan(plan: Plan, fmt: str, out: str | None) -> None:
    if fmt == "json":
        _write(plan_json(plan), out)
    else:
        console = Console(file=open(out, "w", encoding="utf-8") if out else None, width=160 if out else None)
        from .report.table import render_plan

        render_plan(plan, console)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="balancer")
def cli() -> None:
    """DRS-style load balancer for VMware vSphere clusters.

    With no --config and no --snapshot, commands use the embedded simulated cluster,
    whose load replays real PlanetLab traces.
    """


source_options = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file."),
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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--max-moves", type=click.IntRange(min=0), help="Cap on moves in the plan [config: drs.max_moves_per_cycle].")
@click.option("--threshold", type=click.IntRange(1, 5), help="Migration threshold 1 (mandatory only) .. 5 (aggressive).")
@click.option("--planner", type=click.Choice(sorted(PLANNERS)), default="cp-sat", show_default=True)
@click.option("--time-limit", type=click.FloatRange(min=0.1), help="Solver time limit, seconds [config: drs.time_limit].")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
def recommend(config_path, snapshot_path, fmt, max_moves, threshold, planner, time_limit, out) -> None:
    """Dry run: collect (or load) a snapshot, plan, print the plan. Nothing is changed.

    Exit status: 0 with a plan, 2 on bad input, 3 when the mandatory rules cannot all hold.
    """
    if config_path and snapshot_path:
        raise InputError("use either --config or --snapshot, not both")
    cfg = _config(config_path)
    snap = load_snapshot(snapshot_path) if snapshot_path else _collect(cfg)
    plan = make_plan(snap, _options(cfg, threshold, max_moves, planner, time_limit))
    _show_plan(plan, fmt, out)
    if plan.status == "infeasible":
        raise SystemExit(3)


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the snapshot JSON.")
def snapshot(config_path, out) -> None:
    """Write the configured source's current snapshot as JSON."""
    snap = _collect(_config(config_path))
    _write(snapshot_json(snap), out)
    click.echo(f"wrote {out}: cluster {snap.cluster}, {len(snap.hosts)} hosts, {len(snap.vms)} VMs, "
               f"{len(snap.rules)} rules", err=True)


@cli.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file) -> None:
    """Validate a config file."""
    cfg = load_config(file)
    click.echo(f"{file}: ok (source {cfg.source}, automation {cfg.drs.automation}, "
               f"threshold {cfg.drs.migration_threshold}, DPM {cfg.dpm.automation})")


@cli.command()
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--max-age", default="15m", show_default=True,
              help="Refuse a plan whose snapshot is older than this, measured on the source's clock.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def apply(plan_file, config_path, max_age, fmt) -> None:
    """Carry out a saved plan after re-validating it against a fresh snapshot.

    Moves whose premise no longer holds (the VM moved, the target left service) are skipped.
    Exit status: 0 when every action succeeded, 1 otherwise, 2 on bad input.
    """
    from .config import parse_duration
    from .execute import check_plan_against
    from .sources import open_source

    try:
        max_age_s = parse_duration(max_age)
    except ValueError as exc:
        raise InputError(f"--max-age: {exc}") from None
    plan = load_plan(plan_file)
    cfg = _config(config_path)
    source = open_source(cfg)
    try:
        fresh = source.snapshot()
        check_plan_against(fresh, plan)
        if plan.collected_at and fresh.collected_at:
            from datetime import datetime

            age = (fresh.collected_at - datetime.fromisoformat(plan.collected_at)).total_seconds()
            if age > max_age_s:
                raise InputError(f"plan {plan_file}: made from a snapshot {age:.0f} s old (limit {max_age_s:.0f} s); "
                                 "run recommend again")
        results = source.execute(plan)
    finally:
        source.close()
    if fmt == "json":
        click.echo(json.dumps([r.to_json_dict() for r in results], indent=2))
    else:
        from .report.table import render_results

        render_results(results, Console())
    if any(r.outcome != "success" for r in results):
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error becomes one line on stderr and an exit status, never a traceback."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--debug"]
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
