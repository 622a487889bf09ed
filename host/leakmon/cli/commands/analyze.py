"""`leakmon analyze FILE`: the leak rate over a whole recording, in one vectorized
pass, with a summary, and optionally a PNG plot and an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leakmon import units
from leakmon.analysis.cusum import cusum_scan
from leakmon.analysis.decay import choose_model, hole_from_tau, time_to_limit
from leakmon.analysis.slope import fit_slope, sliding_slopes
from leakmon.cli.argtypes import positive
from leakmon.cli.report import ChannelTrace, html_page, plot_png, write
from leakmon.cli.session import load_series
from leakmon.errors import LeakmonError

HELP = "leak rate, plot and report from a recording"
BLOCK_S = 10.0  # CUSUM block: one leak-rate estimate per block


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a recording made by `leakmon record`")
    p.add_argument("--window", type=positive, default=300.0, metavar="S",
                   help="sliding window of the leak-rate fit in seconds (default 300)")
    p.add_argument("--volume", type=positive, metavar="M3", help="free volume, for mass rates (kg/day)")
    p.add_argument("--unit", default="hPa", help="pressure unit of the plot: Pa, hPa, kPa, mbar, mmHg, psi")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the plot here")
    p.add_argument("--report", type=Path, metavar="HTML", help="write a self-contained HTML report here")
    p.add_argument("--limit", metavar="P", help="time until the pressure falls to P (e.g. 520mmHg), from the model that holds")
    p.add_argument("--cd", type=positive, default=0.6, help="discharge coefficient for the hole size (default 0.6)")
    p.add_argument("--json", action="store_true", help="the summary as one JSON object per channel")
    # --site: mass balance per connected group of segments, and which segment leaks (cli/siteview.py)
    p.add_argument("--site", metavar="FILE", help="site (or scenario) file: segments, hatches, sensors; adds "
                   "each group's leak and a verdict per segment")
    p.add_argument("--confidence", type=positive, default=0.99, metavar="C",
                   help="with --site: confidence of the verdict (default 0.99)")
    p.add_argument("--hatches", choices=("auto", "schedule", "operator", "data"), default="auto",
                   help="with --site: hatch states from the site's schedule, the operator's notes in the "
                   "recording, or the data (default: the notes if any, else the schedule)")


def trace(channel: int, label: str, t: np.ndarray, p: np.ndarray, temp: np.ndarray, window_s: float) -> ChannelTrace:
    """A channel's series and its P/T fitted over sliding windows."""
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    n = int(np.clip(round(window_s / dt), 3, max(len(t), 3)))
    empty = np.empty(0)
    tr = ChannelTrace(channel, label, t, p, temp, empty, empty, empty, empty)
    if len(t) < 3:
        return tr
    f = sliding_slopes(t, p / temp, n)
    end = np.arange(n - 1, len(t))
    t_ref = temp[end]
    tr.rate_t_s = t[end]
    tr.leak_rate_pa_per_s = -np.asarray(f.slope) * t_ref
    tr.ci95_low_pa_per_s = -np.asarray(f.ci95_high) * t_ref
    tr.ci95_high_pa_per_s = -np.asarray(f.ci95_low) * t_ref
    block_n = int(np.clip(round(BLOCK_S / dt), 3, max(len(t) // 2, 3)))
    if len(t) >= 2 * block_n:
        tr.cusum = cusum_scan(t, p / temp, block_n)
        tr.alarm_t_s = [a.t_alarm_s for a in tr.cusum.alarms[:1]]
    return tr


@dataclass(frozen=True)
class ChannelSummary:
    """Whole-recording figures of one channel, in the units people think in."""

    channel: int
    sensor: str
    duration_s: float
    t_end_s: float  # device time of the last sample
    samples: int
    pressure_mean_pa: float
    temperature_mean_k: float
    leak_rate_pa_per_s: float
    leak_rate_ci95_low_pa_per_s: float
    leak_rate_ci95_high_pa_per_s: float
    leak_rate_mmhg_per_day: float
    seconds_per_mmhg: float
    first_alarm_t_s: float | None
    alarm_onset_t_s: float | None
    false_alarm_spacing_s: float | None  # expected time between CUSUM false alarms
    model: str  # "linear", or "exponential" (choked flow) when the decay curves
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
        if self.hole_diameter_mm is not None and self.hole_diameter_ci95_mm is not None:
            lo, hi = self.hole_diameter_ci95_mm
            row["hole"] = f"{self.hole_diameter_mm:.3f} mm [{lo:.3f}, {hi:.3f}]"
        if self.time_to_limit_s is not None and self.time_to_limit_ci95_s is not None:
            lo, hi = self.time_to_limit_ci95_s
            row["time to limit"] = f"{units.format_duration(self.time_to_limit_s)} [{units.format_duration(lo)}, {units.format_duration(hi)}]"
        return row


def summary(tr: ChannelTrace, volume_m3: float | None, limit_pa: float | None = None,
            cd: float = 0.6) -> ChannelSummary:
    y = tr.pressure_pa / tr.temperature_k
    f = fit_slope(tr.t_s, y)
    t_ref = float(np.mean(tr.temperature_k))
    rate = -float(f.slope) * t_ref
    model = choose_model(tr.t_s, y)
    exp_fit = model.exponential if model.model == "exponential" else None
    hole = hole_from_tau(exp_fit, volume_m3, t_ref, cd) if exp_fit is not None and volume_m3 else None
    ttl = time_to_limit(model, limit_pa / t_ref) if limit_pa is not None else None
    alarm = tr.cusum.alarms[0] if tr.cusum is not None and tr.cusum.alarms else None
    return ChannelSummary(
        channel=tr.channel, sensor=tr.label, duration_s=float(tr.t_s[-1] - tr.t_s[0]), t_end_s=float(tr.t_s[-1]),
        samples=len(tr.t_s),
        pressure_mean_pa=float(np.mean(tr.pressure_pa)), temperature_mean_k=t_ref, leak_rate_pa_per_s=rate,
        leak_rate_ci95_low_pa_per_s=-float(f.ci95_high) * t_ref,
        leak_rate_ci95_high_pa_per_s=-float(f.ci95_low) * t_ref,
        leak_rate_mmhg_per_day=float(units.pa_per_s_to_mmhg_per_day(rate)),
        seconds_per_mmhg=float(units.seconds_per_mmhg(rate)),
        first_alarm_t_s=alarm.t_alarm_s if alarm else None,
        alarm_onset_t_s=alarm.t_onset_s if alarm else None,
        false_alarm_spacing_s=tr.cusum.arl0_s if tr.cusum is not None else None,
        model=model.model, tau_s=exp_fit.tau_s if exp_fit is not None else None,
        hole_diameter_mm=hole.diameter_m * 1e3 if hole else None,
        hole_diameter_ci95_mm=(hole.diameter_ci95_low_m * 1e3, hole.diameter_ci95_high_m * 1e3) if hole else None,
        time_to_limit_s=ttl.remaining_s if ttl else None,
        time_to_limit_ci95_s=(max(ttl.t_limit_ci95_low_s - float(tr.t_s[-1]), 0.0),
                              max(ttl.t_limit_ci95_high_s - float(tr.t_s[-1]), 0.0)) if ttl else None,
        leak_kg_per_day=None if volume_m3 is None else float(units.mass_rate_kg_per_day(rate, volume_m3, t_ref)),
    )


NOTES = [
    "Leak rate is the pressure the volume loses per unit time at its current gas temperature, from the "
    "least-squares slope of pressure/temperature: temperature swings cancel, a real loss of gas does not.",
    "The shaded band is the 95% interval, widened for serially correlated noise; where it lies above zero "
    "the volume is losing gas.",
    f"A leak alarm (dashed red line) is raised by a CUSUM of the leak rate over {BLOCK_S:g} s blocks "
    "(k = 0.5, h = 5 standard errors); the table states how long it runs between false alarms on average.",
    "Model: the straight line holds for slow leaks; a large leak into vacuum decays exponentially "
    "(choked flow), and then tau gives the equivalent hole size.",
]


def run(args: argparse.Namespace) -> int:
    stream, by_channel = load_series(args.file)
    if not by_channel:
        raise LeakmonError(f"{args.file}: no samples (no HELLO/CALIB from the node, or an empty recording)")
    names = {c.channel: f"ch{c.channel} {c.chip_name}@0x{c.addr:02x}"
             for c in (stream.hello.channels if stream.hello else ())}
    if args.site:  # segments by name: "zvezda sensor (ch0 BMP390@0x77)"
        names = _site_names(args.site, stream, names)
    traces = [trace(ch, names.get(ch, f"ch{ch}"), *series, args.window) for ch, series in sorted(by_channel.items())]
    try:
        limit = units.parse_pressure(args.limit) if args.limit else None
    except ValueError as e:
        raise LeakmonError(f"--limit: {e}") from e
    sums = [summary(tr, args.volume, limit, args.cd) for tr in traces if len(tr.t_s) >= 3]
    site_objects = _site(args, stream, by_channel, limit) if args.site else None
    for s in sums:
        obj = asdict(s)
        if site_objects is not None:
            obj = site_objects[1](obj, s.channel)
        print(json.dumps(obj) if args.json else "  ".join(f"{k}={v}" for k, v in s.row().items()))
    if site_objects is not None:
        for line in site_objects[0]:
            print(line)
    if args.plot or args.report:
        title = f"leakmon analysis of {Path(args.file).name}"
        png = plot_png(traces, title, args.unit)
        if args.plot:
            write(args.plot, png)
        if args.report:
            site_notes = site_objects[2] if site_objects is not None else []  # --site: segments in the report
            write(args.report, html_page(title, [s.row() for s in sums], png, NOTES + site_notes))
    st = stream.decoder_stats
    print(f"leakmon: {st.frames} frames, {stream.stats.lost_frames} lost, {st.crc_errors} CRC errors",
          file=sys.stderr)
    return 0



# -- --site: the segments (cli/siteview.py) --

def _site(args: argparse.Namespace, stream: object, by_channel: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
          limit_pa: float | None) -> tuple[list[str], Callable[[dict[str, Any], int], dict[str, Any]], list[str]]:
    """The station, group and segment lines (JSON or text), a labeller of the channel objects,
    and the text lines for the report."""
    from leakmon.cli import sitehatch, siteview

    if not 0.5 < args.confidence < 1.0:
        raise LeakmonError(f"--confidence must be between 0.5 and 1, got {args.confidence:g}")
    site = siteview.load_site(args.site)
    segment_of = siteview.channel_segments(site, getattr(stream, "hello", None))
    site = sitehatch.with_hatch_source(site, args.file, args.hatches, by_channel, segment_of)
    result = siteview.analyse(site, by_channel, segment_of, args.confidence)
    advice = _advice(site, result)
    text = siteview.text_lines(site, result, limit_pa) + [siteview.plan_text(site, a)[0] if not isinstance(a, str)
                                                          else a for a in advice]
    objs = siteview.json_objects(site, result, limit_pa) + [siteview.plan_object(site, a) for a in advice
                                                            if not isinstance(a, str)]
    lines = [json.dumps(o) for o in objs] if args.json else text
    return lines, lambda obj, ch: siteview.label_sensor(obj, site, ch, segment_of), text


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


def _site_names(path: str, stream: object, names: dict[int, str]) -> dict[int, str]:
    from leakmon.cli import siteview

    site = siteview.load_site(path)
    segment_of = siteview.channel_segments(site, getattr(stream, "hello", None))
    return {ch: f"{site.station.names[seg]} sensor ({names.get(ch, f'ch{ch}')})" for ch, seg in segment_of.items()}
