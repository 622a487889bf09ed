"""Naming the leaking segment from hatch-closure periods, against simulated stations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon.analysis.segments import group_measurements, locate_leaks
from synthetic import segments_record

VOLS = [75.0, 100.0, 60.0]  # Zvezda-like, and two neighbours
SCHEDULE = [(0.0, [[0, 1, 2]]), (3600.0, [[0], [1], [2]]), (7200.0, [[0, 1], [2]]),
            (10800.0, [[0], [1, 2]])]  # fmt: skip


def record(leaks_kg_per_day: list[float], seed: int, schedule=SCHEDULE):
    t = np.arange(0.0, 4 * 3600.0, 1.0)
    p = segments_record(t, VOLS, [x / 86400 for x in leaks_kg_per_day], schedule)
    p = p + np.random.default_rng(seed).normal(0.0, 0.5, p.shape)
    return t, p, np.full(p.shape, 293.15)


@pytest.mark.parametrize("leaky", [0, 1, 2])
def test_names_the_leaking_segment(leaky: int) -> None:
    leaks = [0.0, 0.0, 0.0]
    leaks[leaky] = 0.3  # kg/day: the 2019 PrK rate
    t, p, tk = record(leaks, leaky)
    result = locate_leaks(t, p, tk, VOLS, SCHEDULE)
    named = [s.segment for s in result if s.leaking]
    assert named == [leaky]
    top = next(s for s in result if s.rank == 1)
    assert top.segment == leaky
    assert top.ci95_low_kg_per_s <= 0.3 / 86400 <= top.ci95_high_kg_per_s
    for s in result:
        if s.segment != leaky:
            assert s.p_value > 0.001


def test_two_leaks_and_group_sums() -> None:
    t, p, tk = record([0.2, 0.0, 0.5], 9)
    result = locate_leaks(t, p, tk, VOLS, SCHEDULE)
    assert sorted(s.segment for s in result if s.leaking) == [0, 2]
    ms = group_measurements(t, p, tk, VOLS, SCHEDULE)
    whole = next(m for m in ms if m.segments == (0, 1, 2))
    assert whole.leak_kg_per_s * 86400 == pytest.approx(0.7, abs=5 * whole.stderr_kg_per_s * 86400)


def test_never_isolated_segments_are_not_identifiable_and_bad_schedules_fail() -> None:
    schedule = [(0.0, [[0, 1], [2]])]
    t, p, tk = record([0.0, 0.3, 0.0], 1, schedule)
    result = locate_leaks(t, p, tk, VOLS, schedule)
    assert math.isnan(result[0].leak_kg_per_s) and math.isnan(result[1].leak_kg_per_s)
    assert not result[2].leaking
    with pytest.raises(ValueError, match="repeated or outside"):
        locate_leaks(t, p, tk, VOLS, [(0.0, [[0, 1], [1]])])
    with pytest.raises(ValueError, match="increase"):
        locate_leaks(t, p, tk, VOLS, [(10.0, [[0]]), (5.0, [[1]])])
    with pytest.raises(ValueError, match="shape"):
        locate_leaks(t, p[:2], tk[:2], VOLS, schedule)
