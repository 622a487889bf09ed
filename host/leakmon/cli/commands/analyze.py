"""`leakmon analyze FILE`: the leak rate over a whole recording, in one vectorized
pass, with a summary, and optionally a PNG plot and an HTML report.

`leakmon analyze --db URL --node NODE [--from T] [--to T]` (or `--store FILE`) reads a
node's time range straight from what `leakmon serve` stored, decoded by the same stream
core: the same figures as from a recording of the same frames. `--site FILE` with several
`--node`s weighs a site whose sensors sit on several nodes; `--segment NAME` keeps one
segment's sensors."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leakmon import units
from leakmon.analysis.cusum import BLOCK_S, FALSE_ALARM_DAYS, cusum_scan
from leakmon.analysis.decay import hole_from_tau
from leakmon.analysis.estimate import DEFAULT_WINDOW_S, LeakEstimate, estimate_leak
from leakmon.analysis.rates import pressure_loss
from leakmon.analysis.slope import sliding_slopes
from leakmon.cli.argtypes import positive
from leakmon.cli.report import ChannelTrace, html_page, plot_png, write
from leakmon.cli import dbsource
from leakmon.cli.dbsource import NodeData, add_db_source_args
from leakmon.cli.session import add_alarm_args, alarm_settings, json_line, load_series
from leakmon.errors import LeakmonError

HELP = "leak rate, plot and report from a recording, or from a node's time range in the database"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="a recording made by `leakmon record` (or give --db/--store and --node)")
    p.add_argument("--window", type=positive, default=DEFAULT_WINDOW_S, metavar="S",
                   help=f"sliding window of the plotted leak rate in seconds (default {DEFAULT_WINDOW_S:g})")
    p.add_argument("--volume", type=positive, metavar="M3", help="free volume, for mass rates (kg/day)")
    p.add_argument("--unit", default="hPa", help="pressure unit of the plot: Pa, hPa, kPa, mbar, mmHg, psi")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the plot here")
    p.add_argument("--report", type=Path, metavar="HTML", help="write a self-contained HTML report here")
    p.add_argument("--limit", metavar="P", help="time until the pressure falls to P (e.g. 520mmHg), from the model that holds")
    p.add_argument("--cd", type=positive, default=0.6, help="discharge coefficient for the hole size (default 0.6)")
    p.add_argument("--json", action="store_true", help="the summary as one JSON object per channel")
    add_alarm_args(p)
    # --site: mass balance per connected group of segments, and which segment leaks (cli/siteview.py)
    p.add_argument("--site", metavar="FILE", help="site (or scenario) file: segments, hatches, sensors; adds "
                   "each group's leak and a verdict per segment")
    p.add_argument("--confidence", type=positive, default=0.99, metavar="C",
                   help="with --site: confidence of the verdict (default 0.99)")
    p.add_argument("--hatches", choices=("auto", "schedule", "operator", "data"), default="auto",
                   help="with --site: hatch states from the site's schedule, the operator's notes in the "
                   "recording, or the data (default: the notes if any, else the schedule)")
    p.add_argument("--segment", metavar="NAME", help="with --site: only the sensors of this segment")
    add_db_source_args(p)


def trace(channel: int, label: str, t: np.ndarray, p: np.ndarray, temp: np.ndarray, window_s: float,
          false_alarm_days: float = FALSE_ALARM_DAYS, catch_pa_per_s: float | None = None) -> ChannelTrace:
    """A channel's series, its P/T fitted over sliding windows, and the onset CUSUM."""
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    n = int(np.clip(round(window_s / dt), 3, max(len(t), 3)))
    empty = np.empty(0)
    tr = ChannelTrace(channel, label, t, p, temp, empty, empty, empty, empty)
    if len(t) < 3:
        return tr
    f = sliding_slopes(t, p / temp, n)
    end = np.arange(n - 1, len(t))
    rate = pressure_loss(f, temp[end])
    tr.rate_t_s = t[end]
    tr.leak_rate_pa_per_s, tr.ci95_low_pa_per_s, tr.ci95_high_pa_per_s = rate.value, rate.ci95_low, rate.ci95_high
    block_n = int(np.clip(round(BLOCK_S / dt), 3, max(len(t) // 2, 3)))
    if len(t) >= 2 * block_n:
        catch = catch_pa_per_s / float(np.mean(temp[:block_n])) if catch_pa_per_s else None
        tr.cusum = cusum_scan(t, p / temp, block_n, false_alarm_days * 86400.0, catch)
        tr.alarm_t_s = [a.t_alarm_s for a in tr.cusum.alarms[:1]]
    return tr


@dataclass(frozen=True)
class ChannelSummary:
    """Whole-recording figures of one channel, in the units people think in. The headline
    (leak_rate_*) is the current rate under the model that holds: `leakmon monitor` gives
    the same figures on the same samples (analysis.estimate)."""

    channel: int
    sensor: str
    duration_s: float
    t_end_s: float  # device time of the last sample
    samples: int
    pressure_mean_pa: float
    temperature_mean_k: float
    model: str  # "linear", "exponential" (choked flow) or "neither" (the rate changes)
    model_reason: str
    lack_of_fit_linear_z: float
    lack_of_fit_exponential_z: float | None
    leak_rate_pa_per_s: float
    leak_rate_ci95_low_pa_per_s: float
    leak_rate_ci95_high_pa_per_s: float
    leak_rate_mmhg_per_day: float
    rate_source: str
    seconds_per_mmhg: float
    record_leak_rate_pa_per_s: float  # the straight line over the whole record
    record_leak_rate_ci95_pa_per_s: tuple[float, float]
    noise_exponent: float | None
    drift_warning: str
    first_alarm_t_s: float | None
    alarm_onset_t_s: float | None
    false_alarm_spacing_s: float | None  # as designed from --false-alarm-days
    expected_delay_s: float | None  # for the leak to catch (--catch)
    tau_s: float | None
    hole_diameter_mm: float | None
    hole_diameter_ci95_mm: tuple[float, float] | None
    time_to_limit_s: float | None
    time_to_limit_ci95_s: tuple[float, float] | None
    leak_kg_per_day: float | None

    def row(self) -> dict[str, str]:
        """The summary as the report's table row."""
        row = {
            "sensor": self.sensor, "duration": f"{self.duration_s:.0f} s", "samples": str(self.samples),
            "mean pressure": f"{self.pressure_mean_pa / 100:.2f} hPa",
            "leak rate": f"{self.leak_rate_pa_per_s:+.5f} Pa/s",
            "95% interval": f"[{self.leak_rate_ci95_low_pa_per_s:+.5f}, {self.leak_rate_ci95_high_pa_per_s:+.5f}]",
            "mmHg/day": f"{self.leak_rate_mmhg_per_day:+.3f}",
            "first alarm": "none" if self.first_alarm_t_s is None else f"{self.first_alarm_t_s:.0f} s",
        }
        if self.leak_kg_per_day is not None:
            row["kg/day"] = f"{self.leak_kg_per_day:+.5f}"
        row["model"] = self.model if self.tau_s is None else f"{self.model}, tau {self.tau_s:.0f} s"
        if self.model_reason:
            row["model"] += f" ({self.model_reason}; rate from {self.rate_source})"
        if self.drift_warning:
            row["caution"] = self.drift_warning
        if self.hole_diameter_mm is not None and self.hole_diameter_ci95_mm is not None:
            lo, hi = self.hole_diameter_ci95_mm
            row["hole"] = f"{self.hole_diameter_mm:.3f} mm [{lo:.3f}, {hi:.3f}]"
        if self.time_to_limit_s is not None and self.time_to_limit_ci95_s is not None:
            lo, hi = self.time_to_limit_ci95_s
            row["time to limit"] = f"{units.format_duration(self.time_to_limit_s)} [{units.format_duration(lo)}, {units.format_duration(hi)}]"
        return row


def summary(tr: ChannelTrace, volume_m3: float | None, limit_pa: float | None = None,
            cd: float = 0.6) -> ChannelSummary:
    est: LeakEstimate = estimate_leak(tr.t_s, tr.pressure_pa, tr.temperature_k, limit_pa)
    t_ref, rate = est.temperature_mean_k, est.leak_rate_pa_per_s
    e = est.decay.exponential if est.model == "exponential" else None
    hole = hole_from_tau(e, volume_m3, t_ref, cd) if e is not None and volume_m3 else None
    alarm = tr.cusum.alarms[0] if tr.cusum is not None and tr.cusum.alarms else None
    plan = tr.cusum.plan if tr.cusum is not None else None
    return ChannelSummary(
        channel=tr.channel, sensor=tr.label, duration_s=est.duration_s, t_end_s=est.t_end_s, samples=est.samples,
        pressure_mean_pa=est.pressure_mean_pa, temperature_mean_k=t_ref, model=est.model,
        model_reason=est.model_reason, lack_of_fit_linear_z=est.lack_of_fit_linear_z,
        lack_of_fit_exponential_z=est.lack_of_fit_exponential_z, leak_rate_pa_per_s=rate,
        leak_rate_ci95_low_pa_per_s=est.leak_rate_ci95_low_pa_per_s,
        leak_rate_ci95_high_pa_per_s=est.leak_rate_ci95_high_pa_per_s,
        leak_rate_mmhg_per_day=est.leak_rate_mmhg_per_day, rate_source=est.rate_source,
        seconds_per_mmhg=float(units.seconds_per_mmhg(rate)),
        record_leak_rate_pa_per_s=est.window_leak_rate_pa_per_s,
        record_leak_rate_ci95_pa_per_s=est.window_leak_rate_ci95_pa_per_s,
        noise_exponent=est.noise_exponent if np.isfinite(est.noise_exponent) else None,
        drift_warning=est.drift_warning,
        first_alarm_t_s=alarm.t_alarm_s if alarm else None,
        alarm_onset_t_s=alarm.t_onset_s if alarm else None,
        false_alarm_spacing_s=plan.false_alarm_spacing_s if plan else None,
        expected_delay_s=plan.expected_delay_s if plan else None,
        tau_s=e.tau_s if e is not None else None,
        hole_diameter_mm=hole.diameter_m * 1e3 if hole else None,
        hole_diameter_ci95_mm=(hole.diameter_ci95_low_m * 1e3, hole.diameter_ci95_high_m * 1e3) if hole else None,
        time_to_limit_s=est.time_to_limit_s, time_to_limit_ci95_s=est.time_to_limit_ci95_s,
        leak_kg_per_day=None if volume_m3 is None else float(units.mass_rate_kg_per_day(rate, volume_m3, t_ref)),
    )


NOTES = [
    "Leak rate is the pressure the volume loses per unit time at its mean gas temperature, from the "
    "least-squares slope of pressure/temperature: temperature swings cancel, a real loss of gas does not.",
    "The headline rate is the current rate under the model that holds: the straight line while it fits; "
    "the exponential (choked flow, gives the hole size) at the last sample when the decay curves as one; "
    "otherwise (model 'neither': the rate changes) a line over the last stretch where a line fits.",
    "The shaded band is the 95% interval, from the long-run variance of the noise (white, slow drifts, "
    "flicker): where it lies above zero the volume is losing gas.",
    f"A leak alarm (dashed red line) is raised by a CUSUM of the leak rate over {BLOCK_S:g} s blocks, "
    "designed for the stated spacing between false alarms; the table states it and the expected delay.",
]


def _load(args: argparse.Namespace) -> tuple[list[NodeData], str, Callable[[], None]]:
    """The nodes read (one from a recording), what to call them, and the recording's tail report."""
    if not dbsource.from_db(args):
        stream, by_channel, report_tail = load_series(args.file)
        return [NodeData(None, stream, by_channel, stream.stats.lost_frames, math.nan)], Path(args.file).name, report_tail
    node_ids = args.node or _site_nodes(args)
    if len(set(node_ids)) != len(node_ids):
        raise LeakmonError("--node: a node named twice")
    if len(node_ids) > 1 and not args.site:
        raise LeakmonError("several --node: analyze them one at a time, or together as a site with --site FILE")
    nodes = [dbsource.load_db_series(args, n) for n in node_ids]
    span = f"{args.t_from or 'start'}..{args.t_to or 'now'}"
    return nodes, f"{', '.join(node_ids)} ({span}) from {dbsource.db_label(args)}", lambda: None


def _site_nodes(args: argparse.Namespace) -> list[str]:
    """The nodes a site file's [[sensors]] name (node = "..."), when no --node is given."""
    from leakmon.cli import siteview

    site = siteview.load_site(args.site) if args.site else None
    nodes = list(site.nodes) if site is not None else []
    if site is not None and args.segment:  # only the nodes with a sensor in that segment
        seg = _segment_index(args.segment, site)
        nodes = [n for n in nodes if any(k[0] == n and s == seg for k, s in site.node_sensors.items())]
    if not nodes:
        raise LeakmonError("--db/--store: say which node with --node NODE (or give --site FILE whose [[sensors]] "
                           "name their nodes: node = \"...\")")
    return nodes


def run(args: argparse.Namespace) -> int:
    nodes, source, report_tail = _load(args)
    by_channel, names = dbsource.combine(nodes)
    if not by_channel:
        raise LeakmonError(f"{source}: no samples (no HELLO/CALIB from the node, or an empty recording)")
    days, catch = alarm_settings(args)
    site_of = _site_of(args, nodes, names) if args.site else None
    keep = sorted(by_channel)
    if site_of is not None:  # segments by name: "zvezda sensor (ch0 BMP390@0x77)"
        site, segment_of = site_of
        names = {key: f"{site.station.names[seg]} sensor ({names.get(key, f'ch{key}')})"
                 for key, seg in segment_of.items()}
        if args.segment:
            keep = _segment_channels(args.segment, site, segment_of)
    elif args.segment:
        raise LeakmonError("--segment NAME needs --site FILE (the file says which sensors are in it)")
    traces = [trace(key, names.get(key, f"ch{key}"), *by_channel[key], args.window, days, catch) for key in keep]
    try:
        limit = units.parse_pressure(args.limit) if args.limit else None
    except ValueError as e:
        raise LeakmonError(f"--limit: {e}") from e
    sums = [summary(tr, args.volume, limit, args.cd) for tr in traces if len(tr.t_s) >= 5]
    site_objects = _site(args, nodes, site_of, by_channel, limit) if site_of is not None and not args.segment else None
    for s in sums:
        obj = asdict(s)
        if site_of is not None:
            obj = siteview_label(obj, site_of, s.channel)
        if nodes[0].node_id is not None:  # from the database: which node, and its own channel number
            obj = {"node": nodes[s.channel >> 8].node_id, **obj, "channel": s.channel & 0xFF}
        print(json_line(obj) if args.json else "  ".join(f"{k}={v}" for k, v in s.row().items()))
    if site_objects is not None:
        for line in site_objects[0]:
            print(line)
    if args.plot or args.report:
        title = f"leakmon analysis of {source}"
        png = plot_png(traces, title, args.unit)
        if args.plot:
            write(args.plot, png)
        if args.report:
            site_notes = site_objects[2] if site_objects is not None else []  # --site: segments in the report
            write(args.report, html_page(title, [s.row() for s in sums], png, NOTES + site_notes))
    for nd in nodes:
        st = nd.stream.decoder.stats
        who = f"node {nd.node_id}: " if nd.node_id is not None else ""
        print(f"leakmon: {who}{st.frames} frames, {nd.lost_frames} lost, {st.crc_errors} CRC errors", file=sys.stderr)
    report_tail()
    return 0



# -- --site: the segments (cli/siteview.py) --

SiteOf = tuple[Any, dict[int, int]]  # (siteview.Site, channel key -> segment)


def _site_of(args: argparse.Namespace, nodes: list[NodeData], names: dict[int, str]) -> SiteOf:
    """The site, and which segment each channel (of each node) sits in."""
    from leakmon.cli import siteview

    if not 0.5 < args.confidence < 1.0:
        raise LeakmonError(f"--confidence must be between 0.5 and 1, got {args.confidence:g}")
    site = siteview.load_site(args.site)
    if nodes[0].node_id is None:
        return site, siteview.channel_segments(site, nodes[0].stream.hello)
    return site, siteview.nodes_segments(site, [(str(n.node_id), n.stream.hello) for n in nodes])


def siteview_label(obj: dict[str, Any], site_of: SiteOf, key: int) -> dict[str, Any]:
    from leakmon.cli import siteview

    return siteview.label_sensor(obj, site_of[0], key, site_of[1])


def _segment_index(name: str, site: Any) -> int:
    if name not in site.station.names:
        raise LeakmonError(f"--segment {name}: {site.path} has no such segment "
                           f"(segments: {', '.join(site.station.names)})")
    return int(site.station.names.index(name))


def _segment_channels(name: str, site: Any, segment_of: dict[int, int]) -> list[int]:
    seg = _segment_index(name, site)
    keys = sorted(k for k, s in segment_of.items() if s == seg)
    if not keys:
        raise LeakmonError(f"--segment {name}: no sensor of that segment among the channels read")
    return keys


def _site(args: argparse.Namespace, nodes: list[NodeData], site_of: SiteOf,
          by_channel: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
          limit_pa: float | None) -> tuple[list[str], None, list[str]]:
    """The station, group and segment lines (JSON or text), and the text lines for the report."""
    from leakmon.cli import sitehatch, siteview

    site, segment_of = site_of
    if args.file:
        site = sitehatch.with_hatch_source(site, args.file, args.hatches, by_channel, segment_of)
    else:
        moves = (dbsource.db_hatch_moves(args, nodes, lambda line: sitehatch.parse_operator_line(site, line))
                 if args.hatches in ("auto", "operator") else None)
        site = sitehatch.with_hatch_source(site, dbsource.db_label(args), args.hatches, by_channel, segment_of, moves)
    result = siteview.analyse(site, by_channel, segment_of, args.confidence)
    advice = _advice(site, result)
    text = siteview.text_lines(site, result, limit_pa) + [siteview.plan_text(site, a)[0] if not isinstance(a, str)
                                                          else a for a in advice]
    objs = siteview.json_objects(site, result, limit_pa) + [siteview.plan_object(site, a) for a in advice
                                                            if not isinstance(a, str)]
    lines = [json_line(o) for o in objs] if args.json else text
    return lines, None, text


def _advice(site: Any, result: Any) -> list[Any]:
    """The planner's next step (a Plan), or why there is none (a line), while something is undecided."""
    from leakmon.cli import siteview

    v = result.verdict
    if v.decided or not v.total_kg_per_s > 0:
        return []
    period = max(result.groups[-1].sample_period_s, 1e-3) if result.groups else 1.0
    try:
        return [siteview.plan_for(site, v, site.timeline.state_at(result.t_end_s), v.total_kg_per_s, period)]
    except ValueError as e:
        return [f"plan: {e}"]
