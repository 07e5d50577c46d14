"""Generate the balancer's Grafana dashboards (grafana/dashboards/*.json) from code.

    python grafana/generate.py           # (re)write the dashboards
    python grafana/generate.py --check   # exit 1 when a committed dashboard differs from the code

The dashboards are built with Grafana's own grafana-foundation-sdk (a test dependency), so every
panel shares one data source variable, one set of label matchers, one unit and threshold
vocabulary and one grid layout. The DPM band comes from the config defaults
(balancer.config.DpmConfig: target ± tolerance = 45 %-81 %), the "hot host" line is the one
config/alerts.yml alerts on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import gauge, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from balancer.config import DpmConfig, SdrsConfig

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
OVERVIEW_UID = "balancer-overview"
HOST_UID = "balancer-host"
TAGS = ["balancer", "vsphere", "drs"]

# Utilisation lines drawn on host panels: DPM's band (from the config defaults) and the alert line.
_DPM = DpmConfig()
DPM_LOW = round(_DPM.target - _DPM.tolerance, 2)  # below: DPM may consolidate and power hosts down
DPM_HIGH = round(_DPM.target + _DPM.tolerance, 2)  # above: DPM powers standby hosts on
OVERCOMMIT_ALERT = 1.5  # config/alerts.yml BalancerDatastoreOvercommitted
SDRS_SPACE = SdrsConfig().space_threshold  # Storage DRS relieves a datastore above this space used
HOST_HOT = 0.90  # config/alerts.yml BalancerHostHot fires above this for 15 minutes

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
C = 'cluster="$cluster"'
# Hosts that are on: the population DRS measures balance over.
HOSTS_ON = f'(balancer_host_power_state{{{C},state="on"}} == 1)'
# One number per host for its power state (the metric is 1 for the current state's label).
POWER_CODES = {"on": 1, "standby": 2, "maintenance": 3, "disconnected": 4}
POWER_COLOURS = {"on": "green", "standby": "blue", "maintenance": "orange", "disconnected": "red"}


# Marks on every time panel where DPM (or maintenance) acted on a host.
POWER_ACTIONS_ANNOTATION = (
    f"sum by (action, result) (increase(balancer_power_actions_total{{{C}}}[$__rate_interval])) > 0"
)


def power_state_code(hosts: str) -> str:
    parts = [
        f'(balancer_host_power_state{{{C},host{hosts},state="{state}"}} == 1) * {code}'
        for state, code in POWER_CODES.items()
    ]
    return "max by (host) (\n  " + "\n  or ".join(parts) + "\n)"


def power_mappings() -> list[dm.ValueMap]:
    return [
        dm.ValueMap(
            options={
                str(code): dm.ValueMappingResult(text=state, color=POWER_COLOURS[state], index=i)
                for i, (state, code) in enumerate(POWER_CODES.items())
            }
        )
    ]


def steps(base: str, *levels: tuple[float, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=None, color=base)] + [dm.Threshold(value=v, color=c) for v, c in levels])
    )


def utilisation_steps() -> db.ThresholdsConfig:
    """Below the DPM band blue, in it green, above it orange, above the alert line red."""
    return steps("blue", (DPM_LOW, "green"), (DPM_HIGH, "orange"), (HOST_HOT, "red"))


def host_link() -> db.DashboardLink:
    return (
        db.DashboardLink("Host ${__field.labels.host}")
        .type(dm.DashboardLinkType.LINK)
        .url(
            f"/d/{HOST_UID}/balancer-host?${{__url_time_range}}&${{datasource:queryparam}}"
            "&var-cluster=${__field.labels.cluster}&var-host=${__field.labels.host}"
        )
    )


class Board:
    """A dashboard under construction: numbers panels and their queries in order."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.next_id = 1
        self.builder = (
            db.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(TAGS)
            .editable()
            .refresh("30s")
            .time("now-6h", "now")
            .timezone("browser")
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .annotation(
                db.AnnotationQuery()
                .name("Annotations & Alerts")
                .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                .built_in(1)
                .type("dashboard")
                .enable(True)
                .hide(True)
                .icon_color("rgba(0, 211, 255, 1)")
            )
            .annotation(
                db.AnnotationQuery()
                .name("Host power actions")
                .datasource(DS)
                .enable(True)
                .icon_color("blue")
                .expr(POWER_ACTIONS_ANNOTATION)
            )
            .with_variable(
                db.DatasourceVariable("datasource").label("Data source").type("prometheus")
            )
            .with_variable(
                db.QueryVariable("cluster")
                .label("Cluster")
                .datasource(DS)
                .query("label_values(balancer_last_cycle_timestamp_seconds, cluster)")
                .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
                .sort(dm.VariableSort.ALPHABETICAL_ASC)
            )
        )

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str) -> "Board":
        self.builder.with_row(db.Row(title).id(self._id()))
        return self

    def panel(self, builder, *queries: Dataquery) -> "Board":
        for ref, query in zip("ABCDEFGH", queries):
            builder.with_target(query.ref_id(ref))
        self.builder.with_panel(builder.id(self._id()).datasource(DS))
        return self

    def build(self) -> dm.Dashboard:
        return self.builder.build()


def q(expr: str, legend: str = "__auto", instant: bool = False) -> Dataquery:
    query = Dataquery().expr(expr).legend_format(legend)
    return query.instant() if instant else query.range()


def ts(title: str, description: str, unit: str, width: int = 12, height: int = 8) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .legend(cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST).placement(cm.LegendPlacement.BOTTOM))
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )


def bars(title: str, description: str) -> timeseries.Panel:
    """Counts per interval, stacked: for counters such as migrations or errors."""
    return (
        ts(title, description, "short")
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .decimals(0)
        .min(0)
    )


def utilisation(title: str, description: str, width: int = 12) -> timeseries.Panel:
    return (
        ts(title, description, "percentunit", width=width)
        .min(0)
        .axis_soft_max(1)
        .thresholds(utilisation_steps())
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    )


def big(title: str, description: str, unit: str, width: int = 4, decimals: int | None = None) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.VALUE)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return panel.decimals(decimals) if decimals is not None else panel


def power_timeline(title: str, description: str, hosts: str, width: int) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .span(width)
        .height(8)
        .show_value(cm.VisibilityMode.NEVER)
        .legend(cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST).placement(cm.LegendPlacement.BOTTOM))
        .merge_values(True)
        .fill_opacity(80)
        .line_width(0)
        .mappings(power_mappings())
        .thresholds(steps("text"))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )


IMBALANCE_HELP = (
    "Population standard deviation of demand / capacity over the hosts that are on, per resource "
    "(DRS's balance measure). The balancer acts when it exceeds 0.1 × (5 − L) / √N for migration "
    "threshold L and N hosts on, or when two hosts' utilisation differs by more than the level's gap."
)


def imbalance(width: int) -> timeseries.Panel:
    """Imbalance per resource, with the target the migration threshold tolerates as a dashed line."""
    return (
        ts("Imbalance per resource", IMBALANCE_HELP, "none", width=width)
        .decimals(3)
        .min(0)
        .override_by_name(
            "target",
            [
                dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
                dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
            ],
        )
    )


def imbalance_queries() -> tuple[Dataquery, Dataquery]:
    return (
        q(f"balancer_cluster_imbalance{{{C}}}", "{{resource}}"),
        q(f"balancer_cluster_imbalance_target{{{C}}}", "target"),
    )


def host_variable() -> db.QueryVariable:
    """The Host template variable: the hosts of the chosen cluster."""
    return (
        db.QueryVariable("host")
        .label("Host")
        .datasource(DS)
        .query(f"label_values(balancer_host_utilization_ratio{{{C}}}, host)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def overview() -> dm.Dashboard:
    b = Board(
        OVERVIEW_UID,
        "Balancer / Cluster overview",
        "A balancer-managed cluster: balance, host utilisation and power, migrations, cycles.",
    )
    b.builder.with_variable(
        host_variable()
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
    b.builder.link(
        db.DashboardLink("Host drill-down").type(dm.DashboardLinkType.LINK).url(f"/d/{HOST_UID}/balancer-host")
        .icon("dashboard").include_vars(True).keep_time(True)
    )
    H = 'host=~"$host"'

    b.row("Now")
    b.panel(
        big(
            "Since last good cycle",
            "Time since a cycle of this cluster last succeeded (orange and red: two and three default 5-minute intervals).",
            "s",
            decimals=0,
        ).thresholds(steps("green", (600, "orange"), (900, "red"))),
        q(f"time() - max(balancer_last_success_timestamp_seconds{{{C}}})", "since last good cycle", instant=True),
    )
    for resource, name in (("cpu", "CPU"), ("mem", "Memory")):
        b.panel(
            big(f"{name} imbalance", IMBALANCE_HELP, "none", decimals=3).thresholds(steps("text")),
            q(f'balancer_cluster_imbalance{{{C},resource="{resource}"}}', name, instant=True),
        )
    b.panel(
        big("Hosts on", "Hosts powered on and in service (the rest are in standby, maintenance or disconnected).", "none", decimals=0)
        .thresholds(steps("text")),
        q(f'sum(balancer_host_power_state{{{C},state="on"}})', "hosts on", instant=True),
    )
    b.panel(
        big("Migrations", "vMotions the balancer carried out over the dashboard's time range, any result.", "none", decimals=0)
        .thresholds(steps("text")),
        q(f"sum(increase(balancer_migrations_total{{{C}}}[$__range]))", "migrations", instant=True),
    )
    b.panel(
        big("Cycle errors", "Failed cycle phases over the dashboard's time range.", "none", decimals=0)
        .thresholds(steps("green", (1, "red"))),
        q(f"sum(increase(balancer_cycle_errors_total{{{C}}}[$__range]))", "errors", instant=True),
    )

    b.row("Balance")
    b.panel(imbalance(8), *imbalance_queries())
    b.panel(
        ts(
            "Utilisation spread per resource",
            "Highest minus lowest utilisation among the hosts that are on. DRS balances when it exceeds "
            "30 / 20 / 10 / 5 points at migration thresholds 2 / 3 / 4 / 5.",
            "percentunit",
            width=8,
        )
        .min(0)
        .thresholds(steps("green", (0.2, "orange"), (0.3, "red")))
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)),
        q(
            f"max by (resource) (balancer_host_utilization_ratio{{{C}}} and on (cluster, host) {HOSTS_ON})\n"
            f"- min by (resource) (balancer_host_utilization_ratio{{{C}}} and on (cluster, host) {HOSTS_ON})",
            "{{resource}}",
        ),
    )
    b.panel(
        ts(
            "Planned actions",
            "vMotions and host power actions in the latest plan (carried out or only recommended, by automation level).",
            "none",
            width=8,
        )
        .decimals(0)
        .min(0),
        q(f"balancer_planned_moves{{{C}}}", "moves"),
        q(f"balancer_planned_power_actions{{{C}}}", "power actions"),
    )

    b.row("Hosts")
    for resource, name in (("cpu", "CPU"), ("mem", "Memory")):
        b.panel(
            utilisation(
                f"{name} utilisation per host",
                f"{name} demand / capacity per host. Dashed lines: DPM's band "
                f"({DPM_LOW:.0%}–{DPM_HIGH:.0%}) and the hot-host alert ({HOST_HOT:.0%}). "
                "Click a series for the host's drill-down.",
            ).data_links([host_link()]),
            q(f'balancer_host_utilization_ratio{{{C},{H},resource="{resource}"}}', "{{host}}"),
        )
    b.panel(
        power_timeline(
            "Host power states",
            "Each host's power state: on, standby (DPM), maintenance or disconnected.",
            '=~"$host"',
            width=24,
        ),
        q(power_state_code('=~"$host"'), "{{host}}"),
    )
    b.panel(
        ts("Hosts by power state", "How many hosts are in each power state.", "none")
        .decimals(0)
        .min(0)
        .fill_opacity(60)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)),
        q(f"sum by (state) (balancer_host_power_state{{{C}}})", "{{state}}"),
    )
    b.panel(
        ts("Host health", "Each host's health (Proactive HA: vCenter's health providers, the config's "
           "drs.host_health or POST /host-health): 0 healthy, 1 moderate (quarantine), 2 severe (maintenance, "
           "as drs.health_remediation says). Hosts of unknown health are not shown.", "none")
        .decimals(0)
        .min(0)
        .max(2),
        q(f'(balancer_host_health{{{C},{H},state="moderate"}} == 1) * 1 '
          f'or (balancer_host_health{{{C},{H},state="severe"}} == 1) * 2 '
          f'or (balancer_host_health{{{C},{H},state="healthy"}} == 1) * 0', "{{host}}"),
    )
    b.panel(
        utilisation(
            "Network utilisation per host",
            "The busier direction of each host's physical NIC traffic over their link speed. A host above "
            "drs.max_network_utilization (80 % by default) receives no VM (network-aware placement).",
        ).data_links([host_link()]),
        q(f"balancer_host_network_utilization_ratio{{{C},{H}}}", "{{host}}"),
    )
    b.panel(
        ts("VMs by VM score", "How many powered-on VMs score in each bucket of the VM score (how well their host "
           "serves them: CPU ready, ballooned and swapped memory, entitlement against demand; docs/vsphere7.md).",
           "none", width=8)
        .decimals(0)
        .min(0)
        .fill_opacity(60)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)),
        q(f"sum by (bucket) (balancer_vm_score{{{C}}})", "{{bucket}} %"),
    )
    b.panel(
        big("Cluster score", "The mean VM score of the powered-on VMs (0-100; docs/vsphere7.md).", "none",
            decimals=0),
        q(f"balancer_cluster_score{{{C}}}", "{{cluster}}"),
    )
    b.panel(
        bars("DPM actions by action and result", "Host power actions (standby, power-on, maintenance) per interval."),
        q(
            f"sum by (action, result) (increase(balancer_power_actions_total{{{C}}}[$__rate_interval]))",
            "{{action}} {{result}}",
        ),
    )

    b.row("Migrations")
    b.panel(
        bars("Migrations by reason and result", "vMotions per interval by why they were made and how they ended."),
        q(
            f"sum by (reason, result) (increase(balancer_migrations_total{{{C}}}[$__rate_interval]))",
            "{{reason}} {{result}}",
        ),
    )
    b.panel(
        bars(
            "Suppressed moves by reason",
            "Moves the planner wanted but held back (cooldown, oscillation, ordering, limits) per interval.",
        ),
        q(
            f"sum by (reason) (increase(balancer_moves_suppressed_total{{{C}}}[$__rate_interval]))",
            "{{reason}}",
        ),
    )

    b.row("Datastores")
    b.panel(
        utilisation(
            "Datastore space used",
            "Space used / capacity per datastore. Storage DRS moves disks off a datastore above its space "
            "threshold (sdrs.space_threshold, 80 % by default: the dashed line).",
            width=8,
        ).thresholds(steps("green", (SDRS_SPACE, "red"))),
        q(f"balancer_datastore_space_used_ratio{{{C}}}", "{{datastore}}"),
    )
    b.panel(
        ts(
            "Datastore I/O latency",
            "Mean I/O latency per datastore as the source measures it (none where it does not). "
            "Above sdrs.latency_threshold_ms (15 ms by default) Storage DRS moves disks off it.",
            "s",
            width=8,
        ).min(0),
        q(f"balancer_datastore_latency_seconds{{{C}}}", "{{datastore}}"),
    )
    b.panel(
        utilisation(
            "Datastore over-commitment",
            "Provisioned / capacity per datastore: its disks' full sizes (thin disks as if full) over its "
            "capacity. Above 100 % (the dashed line) its thin disks can outgrow it; the BalancerDatastoreOvercommitted "
            "alert fires above 150 %. Where the source reports no provisioned space, none.",
            width=8,
        ).thresholds(steps("green", (1.0, "orange"), (OVERCOMMIT_ALERT, "red"))),
        q(f"balancer_datastore_overcommit_ratio{{{C}}}", "{{datastore}}"),
    )
    b.panel(
        bars(
            "Storage vMotions by reason and result",
            "Storage moves per interval by why they were made (space, latency, rule, evacuate) and how they ended; "
            "the planned count of the last cycle as a line.",
        ).span(8),
        q(
            f"sum by (reason, result) (increase(balancer_datastore_moves_total{{{C}}}[$__rate_interval]))",
            "{{reason}} {{result}}",
        ),
        q(f"max(balancer_datastore_planned_moves{{{C}}})", "planned"),
    )
    b.panel(
        big("Datastores in maintenance", "Datastores in maintenance mode now.", "short", width=4, decimals=0),
        q(f"sum(balancer_datastore_maintenance{{{C}}})", instant=True),
    )
    b.panel(
        big("Datastore capacity", "The cluster's datastores' capacity together.", "bytes", width=4),
        q(f"sum(balancer_datastore_capacity_bytes{{{C}}})", instant=True),
    )

    b.row("Resource pools")
    for what, metric, unit, words in (
            ("CPU", "balancer_pool_cpu_hertz", "hertz",
             "Per resource pool, what its VMs (those below it too) demand, capped by limits and raised to "
             "reservations, and what they are entitled to: below the demand when the cluster or the pool's limit "
             "cannot give them all of it (docs/resource-pools.md)."),
            ("memory", "balancer_pool_memory_bytes", "bytes",
             "Per resource pool, its VMs' memory demand and what they are entitled to.")):
        b.panel(
            ts(f"Pool {what}: demand and entitlement", words, unit, width=8).min(0),
            q(f'{metric}{{{C}, kind="demand"}}', "{{pool}} demand"),
            q(f'{metric}{{{C}, kind="entitlement"}}', "{{pool}} entitled"),
        )
    b.panel(
        ts(
            "Pool reservations and limits",
            "Each pool's CPU reservation and limit (none drawn where a pool has no limit); its powered-on VMs.",
            "hertz",
            width=8,
        ).min(0),
        q(f'balancer_pool_cpu_hertz{{{C}, kind=~"reservation|limit"}}', "{{pool}} {{kind}}"),
        q(f"balancer_pool_vms{{{C}}}", "{{pool}} VMs"),
    )

    b.row("Balancing domain")
    b.panel(
        utilisation(
            "Share of capacity in its domain",
            "Demand / capacity of the cluster's hosts that are on or in standby, as its balancing domain judges it "
            "(docs/domains.md): above the domain's high mark (0.85 by default) it sends VMs to another cluster. "
            "Empty when the cluster is in no domain with cross_cluster manual or full.",
            width=12,
        ),
        q(f"balancer_domain_cluster_utilization_ratio{{{C}}}", "{{domain}} {{resource}}"),
    )
    b.panel(
        bars(
            "Moves to and from other clusters",
            "Moves between this cluster and the other clusters of its domain per interval, by direction and result.",
        ).span(12),
        q('sum by (target, result) (increase(balancer_domain_moves_total{cluster="$cluster"}[$__rate_interval]))',
          "out to {{target}} {{result}}"),
        q('sum by (cluster, result) (increase(balancer_domain_moves_total{target="$cluster"}[$__rate_interval]))',
          "in from {{cluster}} {{result}}"),
    )

    b.row("Cycles")
    b.panel(
        ts(
            "Cycle duration by phase",
            "95th percentile and mean time of each cycle phase (collect, plan, execute).",
            "s",
            width=8,
        ).min(0),
        q(
            "histogram_quantile(0.95, sum by (phase, le) "
            f"(rate(balancer_cycle_duration_seconds_bucket{{{C}}}[$__rate_interval])))",
            "p95 {{phase}}",
        ),
        q(
            f"sum by (phase) (rate(balancer_cycle_duration_seconds_sum{{{C}}}[$__rate_interval]))\n"
            f"/ sum by (phase) (rate(balancer_cycle_duration_seconds_count{{{C}}}[$__rate_interval]))",
            "mean {{phase}}",
        ),
    )
    b.panel(
        bars("Cycles by status", "Cycles per interval: ok, error (a phase failed) or stopped (the service was shutting down).")
        .span(8),
        q(f"sum by (status) (increase(balancer_cycles_total{{{C}}}[$__rate_interval]))", "{{status}}"),
    )
    b.panel(
        bars("Cycle errors by phase", "Cycle phases that failed, per interval.")
        .span(8)
        .thresholds(steps("red"))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC)),
        q(
            f"sum by (phase) (increase(balancer_cycle_errors_total{{{C}}}[$__rate_interval]))",
            "{{phase}}",
        ),
    )
    return b.build()


def host() -> dm.Dashboard:
    b = Board(
        HOST_UID,
        "Balancer / Host",
        "One host of a balancer-managed cluster: utilisation against the cluster and DPM's band, power state.",
    )
    b.builder.with_variable(host_variable())
    b.builder.link(
        db.DashboardLink("Cluster overview").type(dm.DashboardLinkType.LINK).url(f"/d/{OVERVIEW_UID}/balancer-overview")
        .icon("dashboard").include_vars(True).keep_time(True)
    )
    H = 'host="$host"'

    def cluster_mean(resource: str) -> str:
        return (
            f'avg(balancer_host_utilization_ratio{{{C},resource="{resource}"}} '
            f"and on (cluster, host) {HOSTS_ON})"
        )

    b.row("Now")
    b.panel(
        big("Power state", "The host's power state now.", "none", width=6).mappings(power_mappings())
        .thresholds(steps("text")).color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE),
        q(power_state_code('="$host"'), "{{host}}", instant=True),
    )
    for resource, name in (("cpu", "CPU"), ("mem", "Memory")):
        b.panel(
            gauge.Panel()
            .title(f"{name} utilisation")
            .description(f"{name} demand / capacity now; the colours follow DPM's band and the hot-host alert.")
            .unit("percentunit")
            .min(0)
            .max(1)
            .span(6)
            .height(4)
            .thresholds(utilisation_steps())
            .show_threshold_markers(True)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
            q(f'balancer_host_utilization_ratio{{{C},{H},resource="{resource}"}}', name, instant=True),
        )
    b.panel(
        big(
            "Since last cycle",
            "Time since the balancer last finished a cycle for the host's cluster.",
            "s",
            width=6,
            decimals=0,
        ).thresholds(steps("green", (600, "orange"), (900, "red"))),
        q(f"time() - max(balancer_last_cycle_timestamp_seconds{{{C}}})", "since last cycle", instant=True),
    )

    b.row("Utilisation")
    for resource, name in (("cpu", "CPU"), ("mem", "Memory")):
        b.panel(
            utilisation(
                f"{name}: host and cluster mean",
                f"The host's {name} demand / capacity against the mean over the hosts that are on. "
                f"Dashed lines: DPM's band ({DPM_LOW:.0%}–{DPM_HIGH:.0%}) and the hot-host alert ({HOST_HOT:.0%}).",
            ),
            q(f'balancer_host_utilization_ratio{{{C},{H},resource="{resource}"}}', "{{host}}"),
            q(cluster_mean(resource), "cluster mean"),
        )
    b.panel(
        ts(
            "Distance from the cluster mean",
            "The host's utilisation minus the mean of the hosts that are on, per resource: the host's "
            "share of the imbalance. Positive: busier than the cluster.",
            "percentunit",
        ).axis_centered_zero(True),
        q(
            f"balancer_host_utilization_ratio{{{C},{H}}}\n"
            f"- on (resource) group_left avg by (resource) "
            f"(balancer_host_utilization_ratio{{{C}}} and on (cluster, host) {HOSTS_ON})",
            "{{resource}}",
        ),
    )
    b.panel(
        power_timeline("Power state", "The host's power state over time.", '="$host"', width=12),
        q(power_state_code('="$host"'), "{{host}}"),
    )

    b.row("Cluster")
    b.panel(imbalance(12).title("Cluster imbalance per resource"), *imbalance_queries())
    b.panel(
        bars("Cluster DPM actions", "Host power actions in the cluster per interval, by action and result."),
        q(
            f"sum by (action, result) (increase(balancer_power_actions_total{{{C}}}[$__rate_interval]))",
            "{{action}} {{result}}",
        ),
    )
    return b.build()


DASHBOARDS = {"balancer-overview.json": overview, "balancer-host.json": host}


def render(dashboard: dm.Dashboard) -> str:
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: render(make()) for name, make in DASHBOARDS.items()}


def stale(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Dashboards whose file is missing or differs from the code."""
    out = []
    for name, text in rendered().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


@click.command()
@click.option("--check", is_flag=True, help="Only compare: exit 1 when a dashboard file differs from the code.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DASHBOARDS_DIR, show_default=True)
def main(check: bool, out: Path) -> None:
    """Write the balancer's Grafana dashboards."""
    if check:
        differ = stale(out)
        for name in differ:
            click.echo(f"{out / name}: out of date; run python grafana/generate.py", err=True)
        sys.exit(1 if differ else 0)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (out / name).write_text(text, encoding="utf-8")
        click.echo(out / name)


if __name__ == "__main__":
    main()
