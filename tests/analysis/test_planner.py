"""The isolation planner: its choices, its hold-time model against real fits, and a short
run of its validation (bench/validate_planner.py) against the hourly habit."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from leakmon.analysis import planner
from leakmon.analysis.fit import fit_slope
from leakmon.analysis.massbalance import KG_PER_PA_M3_PER_K, Hatch, Station

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0
CHAIN = Station(("a", "b", "c", "d"), (75.0, 72.0, 55.0, 100.0),
                (Hatch("a-b", 0, 1), Hatch("b-c", 1, 2), Hatch("c-d", 2, 3)))
NOISE = planner.Noise([0.3] * 4, [0.002] * 4, 1.0)


def test_with_a_sensor_everywhere_the_plan_closes_every_hatch_at_once() -> None:
    p = planner.plan(CHAIN, None, NOISE, 1.0 / DAY, [True] * 3)
    assert p.closed == (0, 1, 2) and p.groups == ((0,), (1,), (2,), (3,)) and p.rounds_left == 1
    assert 60.0 < p.hold_s < 3 * 3600.0
    # one hatch at a time: the middle one, halving the suspects
    one = planner.plan(CHAIN, None, NOISE, 1.0 / DAY, [True] * 3, max_closed=1)
    assert one.closed == (1,) and one.rounds_left == 2
    # a hatch the crew must keep open is never closed
    kept = planner.plan(CHAIN, None, NOISE, 1.0 / DAY, [True] * 3, closable=[True, False, True])
    assert 1 not in kept.closed
    # a segment without a sensor cannot be weighed: its groups are not counted as answers
    blind = planner.plan(CHAIN, None, NOISE, 1.0 / DAY, [True] * 3, measured=[True, True, True, False])
    assert blind.expected_suspects_after >= 1.0
    assert planner.worst_case_total_s(CHAIN, NOISE, 1.0 / DAY, [True] * 3, max_closed=1) > p.hold_s


def test_smaller_leaks_and_noisier_sensors_need_longer_holds() -> None:
    base = planner.plan(CHAIN, None, NOISE, 1.0 / DAY, [True] * 3).hold_s
    assert planner.plan(CHAIN, None, NOISE, 0.3 / DAY, [True] * 3).hold_s > base
    loud = planner.Noise([0.9] * 4, [0.006] * 4, 1.0)
    assert planner.plan(CHAIN, None, loud, 1.0 / DAY, [True] * 3).hold_s > base
    warm = planner.Noise([0.3] * 4, [0.002] * 4, 1.0, thermal_k=0.05)
    assert planner.plan(CHAIN, None, warm, 1.0 / DAY, [True] * 3).hold_s > base


def test_the_hold_model_matches_the_scatter_of_real_fits() -> None:
    """The white-noise part of slope_se against fit_slope's spread over many noisy holds."""
    rng = np.random.default_rng(3)
    group, hold = (0, 1), 600.0
    t = np.arange(0.0, hold, 1.0)
    vols = np.array([75.0, 72.0])
    slopes = []
    for _ in range(400):
        p = 101325.0 + rng.normal(0, 0.3, (2, t.size))
        tk = 293.15 + rng.normal(0, 0.002, (2, t.size))
        m = (KG_PER_PA_M3_PER_K * vols[:, None] * p / tk).sum(axis=0)
        slopes.append(fit_slope(t, m).slope)
    predicted = planner.slope_se(CHAIN, group, NOISE, hold) / planner.SE_MARGIN
    assert float(np.std(slopes)) == pytest.approx(predicted, rel=0.1)


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("leakmon_bench_validate_planner", ROOT / "bench" / "validate_planner.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_following_the_plan_names_the_leak_within_the_stated_time_and_beats_the_hourly_habit() -> None:
    vp = load_bench()
    planned, hourly = [], []
    for k in range(6):
        planned.append(vp.follow_planner(vp.random_sim(np.random.default_rng([5, k]), n=int(2 + k % 4))))
        hourly.append(vp.follow_hourly(vp.random_sim(np.random.default_rng([5, k]), n=int(2 + k % 4))))
    ok = [o.correct and o.time_s <= o.stated_s for o in planned]
    assert sum(ok) >= 5, planned
    assert sum(o.false_accusations for o in planned + hourly) == 0
    assert np.median([o.time_s for o in planned]) < np.median([o.time_s for o in hourly])
    assert all(math.isfinite(o.stated_s) for o in planned)
