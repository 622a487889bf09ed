"""bench/coverage_frontier.py's model against what the battery's generators physically draw:
the exact mode powers and slope variance of a unit walk and unit flicker must be what a
simulation of those records, fitted the way fit_slope fits them, shows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from leakmon.analysis import lrv
from synthetic import flicker

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import coverage_frontier  # noqa: E402


def _simulated(family: str, n: int, runs: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(mean mode powers k = 2..15, OLS slope variance) of the unit slow component over white
    noise's, from `runs` simulated n-sample records."""
    x = np.arange(n) - (n - 1) / 2.0
    sxx = float(x @ x)
    edges = lrv.batch_edges(n)

    def modes_and_slope(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slope = e @ x / sxx
        resid = e - e.mean(axis=1, keepdims=True) - np.outer(slope, x)
        sums = np.add.reduceat(resid, edges[:-1], axis=1).T  # (BATCHES, runs)
        return lrv.modes_of_sums(sums, n), slope

    if family == "random walk":
        slow = np.cumsum(rng.normal(0.0, np.sqrt(1.0 / n), (runs, n)), axis=1)
    else:
        slow = np.array([flicker(n, rng) for _ in range(runs)])
    m_slow, b_slow = modes_and_slope(slow)
    m_white, b_white = modes_and_slope(rng.normal(size=(runs, n)))
    powers = np.square(m_slow).mean(axis=1) / np.square(m_white).mean(axis=1)
    return powers, float(np.var(b_slow) / np.var(b_white))


@pytest.mark.parametrize("family", ["random walk", "flicker"])
def test_the_frontiers_exact_shapes_are_what_the_generators_draw(family: str) -> None:
    n, runs = 256, 4000
    powers, slope = coverage_frontier.shape(family, n)
    sim_powers, sim_slope = _simulated(family, n, runs, np.random.default_rng(5))
    # A mean of 4000 chi-square(1) powers over another: about 3 % apart by chance; the slow
    # part is 1-1000x the white at these modes, so a wrong quadratic form is off by far more.
    np.testing.assert_allclose(sim_powers[:6], powers[:6], rtol=0.12)
    assert abs(sim_slope / slope - 1.0) < 0.12, (sim_slope, slope)
