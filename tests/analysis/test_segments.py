"""Naming the leaking segment from hatch-closure periods (massbalance + verdict), against
synthetic stations whose groups share one pressure and their leaks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon.analysis.massbalance import Hatch, HatchTimeline, Station, measure
from leakmon.analysis.verdict import judge
from synthetic import segments_record

VOLS = [75.0, 100.0, 60.0]  # Zvezda-like, and two neighbours
STATION = Station(("zvezda", "zarya", "unity"), tuple(VOLS), (Hatch("h01", 0, 1), Hatch("h12", 1, 2)))
# all open; all closed; 0+1 and 2; 0 and 1+2: the same periods as groups and as hatch states
SCHEDULE = [(0.0, [[0, 1, 2]]), (3600.0, [[0], [1], [2]]), (7200.0, [[0, 1], [2]]), (10800.0, [[0], [1, 2]])]
TIMELINE = HatchTimeline(np.array([-math.inf, 3600.0, 7200.0, 10800.0]),
                         np.array([[True, True], [False, False], [True, False], [False, True]]))
DAY = 86400.0


def record(leaks_kg_per_day: list[float], seed: int, schedule=SCHEDULE):
    t = np.arange(0.0, 4 * 3600.0, 1.0)
    p = segments_record(t, VOLS, [x / DAY for x in leaks_kg_per_day], schedule)
    p = p + np.random.default_rng(seed).normal(0.0, 0.5, p.shape)
    return t, p, np.full(p.shape, 293.15)


@pytest.mark.parametrize("leaky", [0, 1, 2])
def test_names_the_leaking_segment(leaky: int) -> None:
    leaks = [0.0, 0.0, 0.0]
    leaks[leaky] = 0.3  # kg/day: the 2019 PrK rate
    t, p, tk = record(leaks, leaky)
    _, ms = measure(STATION, TIMELINE, t, p, tk)
    v = judge(ms, 3)
    assert v.leaking == [leaky] and v.decided
    s = v.segments[leaky]
    assert s.ci95_low_kg_per_s <= 0.3 / DAY <= s.ci95_high_kg_per_s
    assert v.total_kg_per_s * DAY == pytest.approx(0.3, abs=5 * v.total_stderr_kg_per_s * DAY)


def test_two_leaks_and_group_sums() -> None:
    t, p, tk = record([0.2, 0.0, 0.5], 9)
    _, ms = measure(STATION, TIMELINE, t, p, tk)
    assert sorted(judge(ms, 3).leaking) == [0, 2]
    whole = next(m for m in ms if m.segments == (0, 1, 2))
    assert whole.leak_kg_per_s * DAY == pytest.approx(0.7, abs=5 * whole.stderr_kg_per_s * DAY)


def test_never_isolated_segments_stay_undecided_unless_their_group_is_quiet() -> None:
    tl = HatchTimeline(np.array([-math.inf]), np.array([[True, False]]))
    t, p, tk = record([0.0, 0.3, 0.0], 1, [(0.0, [[0, 1], [2]])])
    _, ms = measure(STATION, tl, t, p, tk)
    v = judge(ms, 3)
    assert [s.leaking for s in v.segments] == [None, None, False]
    assert math.isnan(v.segments[0].leak_kg_per_s) and "isolate" in v.segments[0].reason
    with pytest.raises(ValueError, match="shape"):
        measure(STATION, tl, t, p[:2], tk[:2])
    with pytest.raises(ValueError, match="hatches"):
        measure(STATION, HatchTimeline(np.array([-math.inf]), np.array([[True]])), t, p, tk)
