"""`leakmon analyze FILE`: the leak rate over a whole recording, in one vectorized
pass, with a summary, and optionally a PNG plot and an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from leakmon import units
from leakmon.analysis.slope import fit_slope, sliding_slopes
from leakmon.commands.argtypes import positive
from leakmon.errors import LeakmonError, ProtocolError
from leakmon.fastdecode import FastStream, SampleTable, decode_recording
from leakmon.progress import PROGRESS_STEP_BYTES, Progress
from leakmon.recording import open_recording
from leakmon.report import ChannelTrace, html_page, plot_png, write

HELP = "leak rate, plot and report from a recording"
ALARM_WINDOWS = 2  # consecutive half-overlapping windows whose 95% interval excludes zero


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a recording made by `leakmon record`")
    p.add_argument("--window", type=positive, default=300.0, metavar="S",
                   help="sliding window of the leak-rate fit in seconds (default 300)")
    p.add_argument("--volume", type=positive, metavar="M3", help="free volume, for mass rates (kg/day)")
    p.add_argument("--unit", default="hPa", help="pressure unit of the plot: Pa, hPa, kPa, mbar, mmHg, psi")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the plot here")
    p.add_argument("--report", type=Path, metavar="HTML", help="write a self-contained HTML report here")
    p.add_argument("--json", action="store_true", help="the summary as one JSON object per channel")


def load_series(path: str) -> tuple[FastStream, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Every compensated sample of a recording, by channel: (t_s, pressure_pa, temperature_k).
    Decoded a chunk at a time by the vectorized decoder, with progress for big files."""
    fs = FastStream()
    parts: list[SampleTable] = []
    with open_recording(path) as rec:
        progress = Progress(rec.size, "analyzing")
        try:
            for table in decode_recording(rec, PROGRESS_STEP_BYTES, fs):
                parts.append(table)
                progress.update(rec.position)
        except ProtocolError as e:
            raise LeakmonError(f"{path}: {e}") from e
        progress.close()
    table = SampleTable.concat(parts)
    return fs, {int(ch): (table.t_s[table.channel == ch], table.pressure_pa[table.channel == ch],
                          table.temperature_k[table.channel == ch]) for ch in np.unique(table.channel)}


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
    tr.alarm_t_s = first_alarm(tr, n)
    return tr


def first_alarm(tr: ChannelTrace, window_n: int) -> list[float]:
    """The end time of the first run of ALARM_WINDOWS half-overlapping windows whose
    interval lies above zero: one window's interval excludes zero by chance 2.5% of
    the time, two in a row far less often."""
    step = max(window_n // 2, 1)
    above = tr.ci95_low_pa_per_s[::step] > 0
    run = np.convolve(above.astype(int), np.ones(ALARM_WINDOWS, dtype=int), mode="valid")
    hits = np.flatnonzero(run == ALARM_WINDOWS)
    return [float(tr.rate_t_s[::step][hits[0] + ALARM_WINDOWS - 1])] if len(hits) else []


@dataclass(frozen=True)
class ChannelSummary:
    """Whole-recording figures of one channel, in the units people think in."""

    channel: int
    sensor: str
    duration_s: float
    samples: int
    pressure_mean_pa: float
    temperature_mean_k: float
    leak_rate_pa_per_s: float
    leak_rate_ci95_low_pa_per_s: float
    leak_rate_ci95_high_pa_per_s: float
    leak_rate_mmhg_per_day: float
    seconds_per_mmhg: float
    first_alarm_t_s: float | None
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
        return row


def summary(tr: ChannelTrace, volume_m3: float | None) -> ChannelSummary:
    f = fit_slope(tr.t_s, tr.pressure_pa / tr.temperature_k)
    t_ref = float(np.mean(tr.temperature_k))
    rate = -float(f.slope) * t_ref
    return ChannelSummary(
        channel=tr.channel, sensor=tr.label, duration_s=float(tr.t_s[-1] - tr.t_s[0]), samples=len(tr.t_s),
        pressure_mean_pa=float(np.mean(tr.pressure_pa)), temperature_mean_k=t_ref, leak_rate_pa_per_s=rate,
        leak_rate_ci95_low_pa_per_s=-float(f.ci95_high) * t_ref,
        leak_rate_ci95_high_pa_per_s=-float(f.ci95_low) * t_ref,
        leak_rate_mmhg_per_day=float(units.pa_per_s_to_mmhg_per_day(rate)),
        seconds_per_mmhg=float(units.seconds_per_mmhg(rate)),
        first_alarm_t_s=tr.alarm_t_s[0] if tr.alarm_t_s else None,
        leak_kg_per_day=None if volume_m3 is None else float(units.mass_rate_kg_per_day(rate, volume_m3, t_ref)),
    )


NOTES = [
    "Leak rate is the pressure the volume loses per unit time at its current gas temperature, from the "
    "least-squares slope of pressure/temperature: temperature swings cancel, a real loss of gas does not.",
    "The shaded band is the 95% interval, widened for serially correlated noise; where it lies above zero "
    "the volume is losing gas.",
    f"A leak alarm (dashed red line) is raised when {ALARM_WINDOWS} half-overlapping windows in a row have "
    "their whole interval above zero.",
]


def run(args: argparse.Namespace) -> int:
    stream, by_channel = load_series(args.file)
    if not by_channel:
        raise LeakmonError(f"{args.file}: no samples (no HELLO/CALIB from the node, or an empty recording)")
    names = {c.channel: f"ch{c.channel} {c.chip_name}@0x{c.addr:02x}"
             for c in (stream.hello.channels if stream.hello else ())}
    traces = [trace(ch, names.get(ch, f"ch{ch}"), *series, args.window) for ch, series in sorted(by_channel.items())]
    sums = [summary(tr, args.volume) for tr in traces if len(tr.t_s) >= 3]
    for s in sums:
        print(json.dumps(asdict(s)) if args.json else "  ".join(f"{k}={v}" for k, v in s.row().items()))
    if args.plot or args.report:
        title = f"leakmon analysis of {Path(args.file).name}"
        png = plot_png(traces, title, args.unit)
        if args.plot:
            write(args.plot, png)
        if args.report:
            write(args.report, html_page(title, [s.row() for s in sums], png, NOTES))
    st = stream.decoder_stats
    print(f"leakmon: {st.frames} frames, {stream.stats.lost_frames} lost, {st.crc_errors} CRC errors",
          file=sys.stderr)
    return 0

