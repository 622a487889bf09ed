"""The noise battery, reduced for CI (the full one: bench/validate_analysis.py).

Every record's rate, length, noise levels and times and leak are drawn from a seed
sequence, never chosen; the truth is the leak the chamber physics put in. The 95 % interval
must hold it in 91-98 % of records of every identifiable short-memory family, with an
estimator within 1.25x of the GLS bound. Long-memory noise (flicker, random walk) is
identifiable in principle, but one window's 14 modes pin its exponent loosely: those
families are held to what is measured (bench/RESULTS.md), and most of their misses must be
flagged (noise_exponent >= 1). Unmeasured gas-temperature drift cannot be told from a leak:
the interval must widen or the output must say so.
"""

from __future__ import annotations

import pytest
from synthetic import FAMILIES, run_family

RUNS = 300
MASTER_SEED = 20261201  # the seed sequence the draws come from (not a tuned draw)
SHORT_MEMORY = [f for f in FAMILIES if f not in ("flicker", "random walk", "gas temperature unmeasured")]


@pytest.mark.parametrize("family", SHORT_MEMORY)
def test_coverage_is_91_to_98_percent_and_spread_near_the_gls_bound(family: str) -> None:
    r = run_family(family, RUNS, "short", MASTER_SEED, bound_runs=15)
    assert 0.91 <= r.coverage <= 0.98, r
    assert r.spread_vs_gls < 1.25 * 1.3, r  # 15 draws: the spread ratio is known to ~20 %
    assert r.ols_vs_gls < 1.25, r


@pytest.mark.parametrize("family", ["flicker", "random walk"])
def test_long_memory_is_flagged_and_held_to_its_measured_coverage(family: str) -> None:
    r = run_family(family, RUNS, "short", MASTER_SEED, bound_runs=0)
    assert r.coverage >= 0.78, r  # measured 83-90 % (bench/RESULTS.md): not yet 93 %
    assert r.flagged >= 0.25, r


def test_unmeasured_gas_temperature_drift_widens_or_is_flagged() -> None:
    r = run_family("gas temperature unmeasured", RUNS, "short", MASTER_SEED, bound_runs=0)
    assert r.coverage >= 0.85 and r.flagged >= 0.5, r
