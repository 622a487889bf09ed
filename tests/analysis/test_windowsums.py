"""The live estimate from running sums (analysis.windowsums) against `estimate_leak` of the
same window: every field, on drawn streams (noise families, leak models, sample rates,
device clocks far from zero, ragged blocks), at drawn moments, across many restarts of
the prefix sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon import units
from leakmon.analysis.decay import LACK_OF_FIT_Z
from leakmon.analysis.estimate import LeakEstimate, estimate_leak
from leakmon.analysis.incremental import TrailingWindow
from leakmon.analysis.windowsums import CHUNK, WindowSums, estimate_windows

RATE_FIELDS: tuple[str, ...] = ("leak_rate_pa_per_s", "leak_rate_ci95_low_pa_per_s", "leak_rate_ci95_high_pa_per_s",
               "leak_rate_mmhg_per_day", "window_leak_rate_pa_per_s")  # fmt: skip


def _stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """A chamber's (t, P, T) with a drawn leak model, noise family and clock."""
    dt = float(rng.choice([0.01, 0.1, 1.0]))
    t0 = float(rng.choice([0.0, 1e3, 1e6]))
    t = t0 + np.arange(n) * dt + rng.normal(0.0, dt * 1e-4, n)
    x = t - t0
    span = n * dt
    model = str(rng.choice(["sealed", "line", "exponential", "changing"]))
    p0 = float(rng.uniform(5e4, 1.2e5))
    if model == "sealed":
        p = np.full(n, p0)
    elif model == "line":
        p = p0 - rng.uniform(1e-4, 1.0) * x
    elif model == "exponential":
        p = p0 * np.exp(-x / (span * rng.uniform(0.5, 5.0)))
    else:  # a leak sealing itself: the rate halves over the record
        p = p0 - 0.05 * x + 0.05 * x**2 / (4.0 * span)
    family = rng.choice(["white", "ar1", "walk"])
    sigma = rng.uniform(0.2, 3.0)
    noise = rng.normal(0.0, sigma, n)
    if family == "ar1":  # white plus a slow AR(1) component, as a barometer drifts
        phi, ar, e = rng.uniform(0.9, 0.999), 0.0, rng.normal(0.0, sigma * 0.3, n)
        for i in range(n):
            ar = phi * ar + e[i]
            noise[i] += ar
    elif family == "walk":
        noise += np.cumsum(rng.normal(0.0, sigma * 0.05, n))
    tk = 293.15 + 0.5 * np.sin(x / (span / 3.0 + 1.0)) + rng.normal(0.0, 0.01, n)
    return t, p + noise, tk, f"{model}/{family}/dt={dt}/t0={t0:g}"


def _assert_same(got: LeakEstimate, ref: LeakEstimate, where: str) -> None:
    a, b = got.as_dict(), ref.as_dict()
    near_limit = any(z is not None and abs(abs(z) - LACK_OF_FIT_Z) < 1e-4
                     for z in (b["lack_of_fit_linear_z"], b["lack_of_fit_exponential_z"]))  # fmt: skip
    if near_limit:
        return  # a model on the edge of its test may go either way by rounding
    # A rate near zero is held to 1e-9 of its standard error, a time to 1e-9 of the window
    # (a limit the line only grazes makes its crossing time as sensitive as it is uncertain).
    floor = {k: ref.leak_rate_stderr_pa_per_s for k in RATE_FIELDS + ("window_leak_rate_ci95_pa_per_s",)}
    floor["leak_rate_mmhg_per_day"] = float(units.pa_per_s_to_mmhg_per_day(ref.leak_rate_stderr_pa_per_s))
    floor["time_to_limit_s"] = floor["time_to_limit_ci95_s"] = ref.duration_s
    for k, y in b.items():
        x = a[k]
        if k.startswith("lack_of_fit") and y is not None:
            assert x is not None and abs(x - y) <= 1e-5 * max(1.0, abs(y)), (where, k, x, y)
        elif isinstance(y, (float, list, tuple)):
            xs, ys = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
            assert np.allclose(xs, ys, rtol=1e-9, atol=1e-9 * floor.get(k, 0.0)), (where, k, x, y)
        else:
            assert x == y, (where, k, x, y)


@pytest.mark.parametrize("seed", range(12))
def test_running_sums_give_the_refit_estimate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_total = int(rng.integers(2000, 9000))
    t, p, tk, what = _stream(rng, n_total)
    p2 = p + rng.normal(0.0, 1.0, n_total)  # a second sensor of the node, on the same chamber
    window_s = float(t[min(int(rng.integers(40, 3000)), n_total - 1)] - t[0])
    limit_pa = float(np.min(p)) - float(rng.uniform(0.0, 5e3))
    phase = float(rng.uniform(0.0, 1.0))  # the node's restart phase
    node = [(TrailingWindow(window_s, 3), WindowSums(phase)) for _ in range(2)]
    i, checked = 0, 0
    while i < n_total:
        m = int(rng.integers(1, 3 * CHUNK))
        for (win, _), pp in zip(node, (p, p2)):
            win.add(t[i : i + m], pp[i : i + m], tk[i : i + m])
        i += m
        if rng.random() < 0.3:
            for (win, _), got in zip(node, estimate_windows(node, limit_pa)):
                wt, wp, wk = win.columns()
                if wt.size < 5:
                    assert got is None
                    continue
                assert got is not None
                _assert_same(got, estimate_leak(wt, wp, wk, limit_pa), f"{what} at sample {i}")
                checked += 1
    assert checked > 20


def test_a_node_in_one_pass_equals_each_channel_alone() -> None:
    rng = np.random.default_rng(99)
    n = 4000
    streams = [_stream(rng, n) for _ in range(6)]
    t = streams[0][0]  # a node's channels sample together
    wins = [TrailingWindow(120.0, 3) for _ in streams]
    sums = [WindowSums() for _ in streams]
    for i in range(0, n, 10):
        for w, (_, p, tk, _) in zip(wins, streams):
            w.add(t[i : i + 10], p[i : i + 10], tk[i : i + 10])
        if i % 500 == 490:
            together = estimate_windows(list(zip(wins, sums)))
            for w, got, s in zip(wins, together, streams):
                wt, wp, wk = w.columns()
                assert got is not None
                _assert_same(got, estimate_leak(wt, wp, wk), s[3])


def test_a_restart_phase_outside_its_range_is_refused() -> None:
    for bad in (-0.1, 1.0, math.nan):
        with pytest.raises(ValueError, match="restart_phase"):
            WindowSums(bad)


def test_a_window_the_sums_cannot_take_is_refitted() -> None:
    """A non-positive P/T (a sensor's garbage) has no logarithm: that window is
    estimate_leak's own, exactly, and its node's other windows still come from the sums;
    so is a window below the batches' minimum, one alone at its stream position, and an
    unbounded one (window_s None: its sums would never restart)."""
    rng = np.random.default_rng(3)
    t, p, tk, _ = _stream(rng, 600)
    broken = p.copy()
    broken[300] = -5.0
    unbounded = TrailingWindow(None, 3), WindowSums()
    unbounded[0].add(t, p, tk)
    got = estimate_windows([unbounded, unbounded])[0]
    assert got is not None and got.as_dict() == estimate_leak(t, p, tk).as_dict()
    span = float(t[-1] - t[0]) + 1.0
    node = [(TrailingWindow(span, 3), WindowSums()) for _ in range(2)]
    for (win, _), pp in zip(node, (p, broken)):
        win.add(t[:20], pp[:20], tk[:20])
    short = estimate_windows(node)[0]
    assert short is not None and short.as_dict() == estimate_leak(t[:20], p[:20], tk[:20]).as_dict()
    for (win, _), pp in zip(node, (p, broken)):
        win.add(t[20:], pp[20:], tk[20:])
    good, bad = estimate_windows(node)
    assert bad is not None and bad.as_dict() == estimate_leak(t, broken, tk).as_dict()
    assert good is not None
    _assert_same(good, estimate_leak(t, p, tk), "the good channel")
    alone = estimate_windows(node[:1])[0]
    assert alone is not None and alone.as_dict() == estimate_leak(t, p, tk).as_dict()
