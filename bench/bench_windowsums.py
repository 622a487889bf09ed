"""Benchmark: a gateway's estimate of a node's channels, refitted (estimate_leak, as
`monitor` does) against running sums (analysis.windowsums), in the same run.

A node of --channels channels sampled at --hz; the windows are filled to --window-s, then
the node moves on by --every-s of device time between estimates (a gateway's cadence), and
each path estimates every channel at each step. Two chambers: a steady leak (the line
holds) and a leak whose rate changes over the window (neither model holds, so both paths
refit the last stretch's line from the samples). Prints CPU time per channel estimate, the
ratio, and the largest difference of the headline rate between the two paths.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from leakmon.analysis.estimate import estimate_leak
from leakmon.analysis.incremental import TrailingWindow
from leakmon.analysis.windowsums import WindowSums, estimate_windows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--window-s", type=float, default=600.0)
    ap.add_argument("--every-s", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    for kind in ("steady", "changing"):
        run(a, kind)


def run(a: argparse.Namespace, kind: str) -> None:
    rng = np.random.default_rng(a.seed)
    dt = 1.0 / a.hz
    block = max(1, int(round(1.0 / dt)))  # one frame a second
    per_step = int(round(a.every_s / dt))
    n_total = int(a.window_s / dt) + per_step * a.steps + block
    t = 5e4 + np.arange(n_total) * dt
    x = t - t[0]
    bend = 0.0 if kind == "steady" else 0.5 / (n_total * dt)  # the rate halves over the record
    pressures = [1e5 - rng.uniform(0.01, 0.05) * (x - bend * x**2 / 2) + rng.normal(0, 0.5, n_total)
                 for _ in range(a.channels)]  # fmt: skip
    tk = 293.15 + rng.normal(0, 0.01, n_total)
    wins = [TrailingWindow(a.window_s, 3) for _ in range(a.channels)]
    pairs = [(w, WindowSums()) for w in wins]

    def feed(i0: int, i1: int) -> None:
        for i in range(i0, i1, block):
            for w, p in zip(wins, pressures):
                w.add(t[i : min(i + block, i1)], p[i : min(i + block, i1)], tk[i : min(i + block, i1)])

    start = int(a.window_s / dt)
    feed(0, start)
    estimate_windows(pairs)  # the first builds the sums over the whole window: a gateway's start
    refit_s = sums_s = 0.0
    worst = 0.0
    models: dict[str, int] = {}
    for k in range(a.steps):
        feed(start + k * per_step, start + (k + 1) * per_step)
        c0 = time.process_time()
        got = estimate_windows(pairs)
        c1 = time.process_time()
        ref = [estimate_leak(*w.columns()) for w in wins]
        c2 = time.process_time()
        sums_s += c1 - c0
        refit_s += c2 - c1
        for g, r in zip(got, ref):
            assert g is not None
            models[r.model] = models.get(r.model, 0) + 1
            worst = max(worst, abs(g.leak_rate_pa_per_s - r.leak_rate_pa_per_s) / r.leak_rate_stderr_pa_per_s)
    n_est = a.steps * a.channels
    print(f"{kind} leak: a node of {a.channels} channels, windows of {len(wins[0])} samples ({a.window_s:g} s at "
          f"{a.hz:g} Hz), an estimate every {a.every_s:g} s, {n_est} estimates a path (CPU time); models {models}")
    print(f"  refit (estimate_leak, baseline)   {refit_s / n_est * 1e3:7.3f} ms a channel   x1.00")
    print(f"  running sums (windowsums)         {sums_s / n_est * 1e3:7.3f} ms a channel   "
          f"x{refit_s / sums_s:.2f} faster")
    print(f"  largest headline-rate difference: {worst:.1e} of its standard error")


if __name__ == "__main__":
    main()
