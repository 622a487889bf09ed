"""Detection on every shipped scenario, through the whole chain: the firmware on the
virtual board, the host's decoding and compensation, and the CUSUM that
`leakmon analyze` runs (10 s blocks, designed for a false alarm per 30 days per
channel). Prints, per scenario and sensor: the true leak, the time to the first
alarm after the leak starts, the estimated onset, and the false alarms over a long
leak-free (sealed) run: a week of device time is `--sealed-hours 168`.

    .venv/bin/python bench/detection_table.py [--sealed-hours H]
"""

from __future__ import annotations

import argparse
import struct
import time

import numpy as np
from leakmon import wire
from leakmon.analysis.cusum import BLOCK_S, cusum_scan
from leakmon.link.node import Node
from leakmon.sim import scenario as scenario_mod
from leakmon.sim.board import VirtualBoard
from leakmon.sim.truth import truth_table
from leakmon.wire.stream import SampleBlock

RUNS = {  # scenario: (seconds of device time, sampling period us, watch from s, CUSUM block s)
    "steady_leak": (600.0, 100_000, 0.0, 10.0),
    "large_leak": (120.0, 100_000, 0.0, 10.0),
    "pressure_decay": (127.0, 100_000, 7.0, 10.0),  # from the end of fill: the leak test proper
    # A station leaks ~1e-3 of what a test chamber does per second: blocks must be long.
    "station_hatches": (14_400.0, 1_000_000, 0.0, 600.0),
}


def samples(name: str, duration_s: float, period_us: int, seed: int = 1) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per channel (t_s, P/T) from the virtual board, channels in scenario-sensor order."""
    got: dict[int, list[SampleBlock]] = {}
    with VirtualBoard(scenario_mod.load(name), seed=seed, speed=0) as board, Node.open(board.port) as node:
        hello = node.handshake()
        if hello.period_us != period_us:
            node.command(wire.C_SET_PERIOD, struct.pack("<I", period_us))
            node.read()
        t_last = 0.0
        while t_last < duration_s:
            for b in node.read():
                if isinstance(b, SampleBlock):
                    got.setdefault(b.channel, []).append(b)
                    t_last = max(t_last, float(b.t_s[-1]))
    return {ch: (np.concatenate([b.t_s for b in bl]), np.concatenate([b.pressure_pa / b.temperature_k for b in bl]))
            for ch, bl in got.items()}


def block_n(t: np.ndarray, block_s: float = BLOCK_S) -> int:
    return max(int(round(block_s / float(np.median(np.diff(t))))), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sealed-hours", type=float, default=24.0, help="length of the leak-free run (24)")
    args = ap.parse_args()
    print(f"{'scenario':<16} {'watched':<22} {'true leak Pa/s':>15} {'block s':>7} {'first alarm s':>14} {'onset s':>8} "
          f"{'designed false-alarm spacing h':>12} {'wall s':>7}")
    for name, (dur, period, start, block_s) in RUNS.items():
        t0 = time.monotonic()
        sc = scenario_mod.load(name)
        series = samples(name, dur, period)
        volume = {g.name: g.volume_m3 for g in sc.segments}
        segs = [sp.segment or sc.segments[0].name for sp in sc.sensors]
        truth = truth_table(sc, np.array([max(start, 1.0)]))
        if len(segs) > 1:
            # Connected modules trade gas as they warm: watch the station's total gas.
            (t, _), *_ = series.values()
            n = min(len(v[1]) for v in series.values())
            total_v = sum(volume[g] for g in segs)
            y = sum(volume[g] * series[ch][1][:n] for ch, g in zip(sorted(series), segs)) / total_v
            watched = [("all modules", t[:n], y, sum(float(truth[f"{g}.leak_kg_per_s"][0]) for g in segs)
                        * 8.314462 * 293.15 / (0.028965 * total_v))]
        else:
            (t, y), = series.values()
            watched = [(segs[0], t, y, float(truth[f"{segs[0]}.leak_pa_per_s"][0]))]
        for label, t, y, leak in watched:
            sel = t >= start
            res = cusum_scan(t[sel], y[sel], block_n(t, block_s))
            first = res.alarms[0] if res.alarms else None
            print(f"{name:<16} {label:<22} {leak:15.5f} {block_s:7.0f} {first.t_alarm_s if first else float('nan'):14.1f} "
                  f"{first.t_onset_s if first else float('nan'):8.1f} {res.arl0_s / 3600:12.1f} {time.monotonic() - t0:7.1f}")
    t0 = time.monotonic()
    sealed_s = args.sealed_hours * 3600
    (t, y), = samples("sealed", sealed_s, 1_000_000).values()
    res = cusum_scan(t, y, block_n(t))
    days = (t[-1] - t[0]) / 86400
    print(f"\nsealed (no leak, 0.5 K swing): {len(res.alarms)} false alarms in {args.sealed_hours:g} h of device time "
          f"({len(res.alarms) / days:.1f}/day); expected spacing {res.arl0_s / 3600:.1f} h "
          f"({86400 / res.arl0_s:.1f}/day); wall {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
