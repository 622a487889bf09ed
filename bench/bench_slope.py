"""Benchmark: sliding_slopes (prefix sums, O(N)) against a per-window numpy.polyfit loop.

Not a test: prints timings and ratios measured in the same run, and never fails on them.
The goal (issue 11): every window of 10 M samples, each with its slope and its long-run
variance interval, in about 1 s on one core, at least 100x a per-window polyfit loop.

One core means one BLAS thread too, so OPENBLAS_NUM_THREADS defaults to 1 here. Wall and CPU
seconds are printed, first call and best of --repeat, on 1 and 2 threads: on a shared machine
the CPU figure is the steadier one. The best 1-thread call's CPU time is split between
lrv.spectral_variance (the spectral fit over the mode powers) and the rest. --baseline FILE
times another sliding.py (e.g. `git show <commit>:host/leakmon/analysis/sliding.py`)
interleaved with this one, for a before/after in the same run; --baseline-lrv FILE gives it
its own lrv.py too (the spectral fit it calls through fit.spread), so that the ratio is the
old code's against the new. With a baseline, every window's outputs are compared with the
baseline's (they must agree to rounding and choose the same spectral shape).

    .venv/bin/python bench/bench_slope.py [--samples 10000000] [--window 600] [--subset 2000]
        [--repeat 3] [--baseline /tmp/old_sliding.py [--baseline-lrv /tmp/old_lrv.py]]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import argparse
import importlib.util
import math
import resource
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np
from leakmon.analysis import fit, lrv
from leakmon.analysis.fit import FloatArray
from leakmon.analysis.slope import SlopeFit, fit_slope, sliding_slopes

Sliding = Callable[..., SlopeFit[FloatArray]]


def load_module(name: str, path: str) -> types.ModuleType:
    """A module from a file (it imports leakmon as installed)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"leakmon: cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except OSError as exc:
        raise SystemExit(f"leakmon: cannot load {path}: {exc.strerror}") from None
    return mod


def load_baseline(path: str, lrv_path: str | None) -> tuple[Sliding, types.ModuleType]:
    """sliding_slopes from another copy of sliding.py, and the lrv module it uses: today's,
    or another copy of lrv.py, which the baseline then reaches directly and through a
    fit.spread whose globals name it (fit.py itself is today's)."""
    mod = load_module("baseline_sliding", path)
    if lrv_path is not None:
        base_lrv = load_module("baseline_lrv", lrv_path)
        spread = types.FunctionType(fit.spread.__code__, {**vars(fit), "lrv": base_lrv}, "spread")
        vars(mod).update(lrv=base_lrv, spread=spread)
    fn: Sliding = vars(mod)["sliding_slopes"]
    base: types.ModuleType = vars(mod)["lrv"]
    return fn, base


class SpectralClock:
    """Counts the CPU seconds spent inside spectral_variance (the spectral fit over the mode
    powers, which fit.spread looks up on its lrv module at each call) of each of the given
    lrv modules while installed."""

    def __init__(self, modules: list[types.ModuleType]) -> None:
        self.inner = {m: vars(m)["spectral_variance"] for m in dict.fromkeys(modules)}
        self.cpu_s = 0.0

    def __enter__(self) -> SpectralClock:
        for module, inner in self.inner.items():
            vars(module)["spectral_variance"] = self.timed(inner)
        return self

    def timed(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            c0 = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu_s += time.thread_time() - c0

        return timed

    def __exit__(self, *exc: object) -> None:
        for module, inner in self.inner.items():
            vars(module)["spectral_variance"] = inner


def time_sliding(
    fns: dict[str, Sliding], modules: list[types.ModuleType], t_s: np.ndarray, y: np.ndarray,
    w: int, repeat: int,
) -> tuple[dict[str, SlopeFit[FloatArray]], dict[tuple[str, str], tuple[float, float, float]]]:
    """First call (cold: its ~800 MB of output are paged in), then the best of `repeat`
    calls per thread count, the implementations interleaved: (wall, CPU, CPU inside
    spectral_variance of the lrv `modules`) seconds of the call with the best wall time.
    Also each implementation's result of its first call, and the least CPU time of any of
    its 1-thread calls (user, system: the kernel's zeroing of fresh output pages is system
    time, and on a shared machine it varies most)."""  # fmt: skip
    runs: dict[tuple[str, str], tuple[float, float, float]] = {}
    least: dict[str, tuple[float, float]] = {}
    fits: dict[str, SlopeFit[FloatArray]] = {}
    with SpectralClock(modules) as clock:
        for workers in [None] + [1, 2] * repeat:
            for name, fn in fns.items():
                clock.cpu_s = 0.0
                c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                got = fn(t_s, y, w, workers=workers or 1)
                wall, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
                user, system = c1.ru_utime - c0.ru_utime, c1.ru_stime - c0.ru_stime
                fits.setdefault(name, got)
                del got
                how = "first call, 1 thread" if workers is None else f"best, {workers} thread(s)"
                if wall < runs.get((name, how), (math.inf,))[0]:
                    runs[(name, how)] = (wall, user + system, clock.cpu_s)
                if workers == 1 and user + system < sum(least.get(name, (math.inf, 0.0))):
                    least[name] = (user, system)
    for (name, how), (wall, cpu, _) in runs.items():
        print(f"{name:24} {how:22} {wall:6.3f} s wall {cpu:6.3f} s CPU")
    for name, (user, system) in least.items():
        print(f"{name:24} least CPU of a 1-thread call {user + system:6.3f} s "
              f"(user {user:.3f}, system {system:.3f})")
    if len(least) > 1:
        new = sum(least["sliding_slopes"])
        for name, times in least.items():
            if name != "sliding_slopes":
                print(f"least CPU against {name}: {sum(times) / new:.2f}x")
    return fits, runs


def compare(new: SlopeFit[FloatArray], old: SlopeFit[FloatArray], name: str) -> None:
    """Every window's outputs against the baseline's: the largest relative difference per
    field (NaN where both are NaN counts as equal), and the windows whose spectral shape
    differs (noise exponent, or the interval's factor of the standard error)."""
    for field in ("slope", "intercept", "stderr", "ci95_low", "ci95_high", "residual_sigma",
                  "n_eff", "noise_exponent", "t_mid_s", "t_end_s"):  # fmt: skip
        a, b = getattr(new, field), getattr(old, field)
        same_nan = np.isnan(a) & np.isnan(b)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(same_nan | (a == b), 0.0, np.abs(a - b) / np.abs(b))
        print(f"  {field:15} max relative difference to {name}: {rel.max():.1e}")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor_new = (new.ci95_high - new.slope) / new.stderr
        factor_old = (old.ci95_high - old.slope) / old.stderr
    moved = ~np.isclose(factor_new, factor_old, rtol=1e-9, equal_nan=True)
    moved |= ~((new.noise_exponent == old.noise_exponent)
               | (np.isnan(new.noise_exponent) & np.isnan(old.noise_exponent)))  # fmt: skip
    print(f"  windows whose spectral shape differs from {name}'s: {int(moved.sum()):,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--window", type=int, default=600, help="samples per window")
    ap.add_argument("--subset", type=int, default=2000, help="windows for the loop baselines")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per thread count")
    ap.add_argument("--baseline", help="another sliding.py to time side by side")
    ap.add_argument("--baseline-lrv", help="the baseline's own lrv.py (default: today's)")
    args = ap.parse_args()
    if args.baseline_lrv and not args.baseline:
        raise SystemExit("leakmon: --baseline-lrv needs --baseline")

    # A P/T record (Pa/K) at 10 Hz that starts at t = 1e6 s: ~1 Pa/s leak, 0.6 Pa of noise.
    rng = np.random.default_rng(args.seed)
    n, w = args.samples, args.window
    t_s = 1e6 + 0.1 * np.arange(n) + rng.uniform(-0.01, 0.01, n)
    y = 340.0 - 2e-4 * (t_s - t_s[0]) + rng.normal(0.0, 0.002, n)
    n_win = n - w + 1
    load = os.getloadavg()
    print(f"{n:,} samples, window {w} samples, {n_win:,} windows; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")

    fns: dict[str, Sliding] = {"sliding_slopes": sliding_slopes}
    modules = [lrv]
    if args.baseline:
        base_fn, base_lrv = load_baseline(args.baseline, args.baseline_lrv)
        what = os.path.basename(args.baseline)
        if args.baseline_lrv:
            what += f" + {os.path.basename(args.baseline_lrv)}"
        fns[f"baseline {what}"] = base_fn
        modules.append(base_lrv)
    all_fits, runs = time_sliding(fns, modules, t_s, y, w, args.repeat)
    fits = all_fits.pop("sliding_slopes")
    for name in list(all_fits):
        compare(fits, all_fits.pop(name), name)
    wall_1, cpu_1, _ = runs[("sliding_slopes", "best, 1 thread(s)")]

    starts = np.linspace(0, n_win - 1, min(args.subset, n_win)).astype(np.int64)
    t0 = time.perf_counter()
    # Times taken from each window's start, as a careful user would (raw t ~ 1e6 s costs
    # numpy.polyfit digits on short windows).
    ref = np.array([np.polyfit(t_s[i : i + w] - t_s[i], y[i : i + w], 1)[0] for i in starts])
    t_polyfit = time.perf_counter() - t0

    t0 = time.perf_counter()
    one = np.array([fit_slope(t_s[i : i + w], y[i : i + w]).slope for i in starts])
    t_fit = time.perf_counter() - t0

    per_sliding = wall_1 / n_win
    per_polyfit = t_polyfit / starts.size
    per_fit = t_fit / starts.size
    # Relative to the slope, or to its standard error where a short window's slope is ~0.
    scale = np.maximum(np.abs(ref), fits.stderr[starts])
    rel_polyfit = np.max(np.abs(fits.slope[starts] - ref) / scale)
    rel_fit = np.max(np.abs(fits.slope[starts] - one) / scale)
    for name, secs, count, per in (
        ("sliding_slopes", wall_1, n_win, per_sliding),  # best 1-thread wall time above
        ("polyfit loop", t_polyfit, starts.size, per_polyfit),
        ("fit_slope loop", t_fit, starts.size, per_fit),
    ):
        print(f"{name:15} {secs:8.3f} s for {count:>10,} windows  {per * 1e9:12.1f} ns/window")
    print(f"ONE CORE: all {n_win:,} windows in {wall_1:.3f} s wall, {cpu_1:.3f} s CPU "
          f"(best of {args.repeat}, 1 thread)")
    print(f"speed-up per window on one core: {per_polyfit / per_sliding:,.0f}x over polyfit, "
          f"{per_fit / per_sliding:,.0f}x over fit_slope (which also gives the error bars)")
    for name, fn in fns.items():
        if name != "sliding_slopes":
            base_wall, base_cpu, _ = runs[(name, "best, 1 thread(s)")]
            print(f"against {name}: {base_wall / wall_1:.2f}x wall, {base_cpu / cpu_1:.2f}x CPU "
                  f"(1 thread; {base_wall:.3f} s -> {wall_1:.3f} s wall)")
    for (name, how), (wall, cpu, sv_s) in runs.items():
        if how == "best, 1 thread(s)":
            print(f"split of {name}'s best 1-thread call, CPU: lrv.spectral_variance "
                  f"{sv_s:.3f} s ({sv_s / cpu:.0%}), the rest {cpu - sv_s:.3f} s")
    print(f"polyfit over all {n_win:,} windows would take ~{per_polyfit * n_win:,.0f} s")
    print(f"max relative slope difference: {rel_polyfit:.2e} vs polyfit, "
          f"{rel_fit:.2e} vs fit_slope")
    for field in ("stderr", "ci95_high", "residual_sigma", "n_eff"):
        want = np.array([getattr(fit_slope(t_s[i : i + w], y[i : i + w]), field) for i in starts])
        rel = np.max(np.abs(getattr(fits, field)[starts] - want) / np.abs(want))
        print(f"max relative {field} difference vs fit_slope: {rel:.2e}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
