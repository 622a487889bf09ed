"""Benchmark: sliding_slopes (prefix sums, O(N)) against a per-window numpy.polyfit loop.

Not a test: prints timings and ratios measured in the same run, and never fails on them.
Wall and CPU seconds are both printed, first call and best of --repeat, on 1 and 2 threads:
on a shared machine the CPU figure is the steadier one.

    .venv/bin/python bench/bench_slope.py [--samples 10000000] [--window 600] [--subset 2000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from leakmon.analysis.slope import SlopeFit, fit_slope, sliding_slopes


def time_sliding(
    t_s: np.ndarray, y: np.ndarray, w: int, repeat: int
) -> tuple[SlopeFit[np.ndarray], float]:
    """First call (cold: its ~720 MB of output are paged in), then the best of `repeat`
    calls per thread count, in wall and CPU seconds; returns a fit and the best wall time."""
    runs: dict[str, tuple[float, float]] = {}
    for workers in [None] + [1, 2] * repeat:
        c0, t0 = time.process_time(), time.perf_counter()
        fits = sliding_slopes(t_s, y, w, workers=workers or 1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        key = "first call, 1 thread" if workers is None else f"best, {workers} thread(s)"
        old = runs.get(key, (math.inf, math.inf))
        runs[key] = (min(old[0], wall), min(old[1], cpu))
    for key, (wall, cpu) in runs.items():
        print(f"sliding_slopes {key:22} {wall:6.3f} s wall {cpu:6.3f} s CPU")
    return fits, min(wall for wall, _ in runs.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--window", type=int, default=600, help="samples per window")
    ap.add_argument("--subset", type=int, default=2000, help="windows for the loop baselines")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per thread count")
    args = ap.parse_args()

    # A P/T record (Pa/K) at 10 Hz that starts at t = 1e6 s: ~1 Pa/s leak, 0.6 Pa of noise.
    rng = np.random.default_rng(args.seed)
    n, w = args.samples, args.window
    t_s = 1e6 + 0.1 * np.arange(n) + rng.uniform(-0.01, 0.01, n)
    y = 340.0 - 2e-4 * (t_s - t_s[0]) + rng.normal(0.0, 0.002, n)
    n_win = n - w + 1
    print(f"{n:,} samples, window {w} samples, {n_win:,} windows")

    fits, t_sliding = time_sliding(t_s, y, w, args.repeat)

    starts = np.linspace(0, n_win - 1, min(args.subset, n_win)).astype(np.int64)
    t0 = time.perf_counter()
    # Times taken from each window's start, as a careful user would (raw t ~ 1e6 s costs
    # numpy.polyfit digits on short windows).
    ref = np.array([np.polyfit(t_s[i : i + w] - t_s[i], y[i : i + w], 1)[0] for i in starts])
    t_polyfit = time.perf_counter() - t0

    t0 = time.perf_counter()
    one = np.array([fit_slope(t_s[i : i + w], y[i : i + w]).slope for i in starts])
    t_fit = time.perf_counter() - t0

    per_sliding = t_sliding / n_win
    per_polyfit = t_polyfit / starts.size
    per_fit = t_fit / starts.size
    # Relative to the slope, or to its standard error where a short window's slope is ~0.
    scale = np.maximum(np.abs(ref), fits.stderr[starts])
    rel_polyfit = np.max(np.abs(fits.slope[starts] - ref) / scale)
    rel_fit = np.max(np.abs(fits.slope[starts] - one) / scale)
    for name, secs, count, per in (
        ("sliding_slopes", t_sliding, n_win, per_sliding),  # the best wall time above
        ("polyfit loop", t_polyfit, starts.size, per_polyfit),
        ("fit_slope loop", t_fit, starts.size, per_fit),
    ):
        print(f"{name:15} {secs:8.3f} s for {count:>10,} windows  {per * 1e9:12.1f} ns/window")
    print(f"speed-up per window: {per_polyfit / per_sliding:,.0f}x over polyfit, "
          f"{per_fit / per_sliding:,.0f}x over fit_slope (which also gives the error bars)")
    print(f"polyfit over all {n_win:,} windows would take ~{per_polyfit * n_win:,.0f} s")
    print(f"max relative slope difference: {rel_polyfit:.2e} vs polyfit, "
          f"{rel_fit:.2e} vs fit_slope")
    for field in ("stderr", "ci95_high", "residual_sigma", "n_eff"):
        want = np.array([getattr(fit_slope(t_s[i : i + w], y[i : i + w]), field) for i in starts])
        rel = np.max(np.abs(getattr(fits, field)[starts] - want) / np.abs(want))
        print(f"max relative {field} difference vs fit_slope: {rel:.2e}")


if __name__ == "__main__":
    main()
