"""The verdict on each segment: deductions of the crews' binary search, and a
false-accusation rate no worse than the stated confidence, one look or many."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon.analysis.massbalance import GroupMeasurement
from leakmon.analysis.verdict import judge, look_alpha

DAY = 86400.0


def gm(config: int, segs: tuple[int, ...], kg_per_day: float, se_kg_per_day: float, span_s: float = 3600.0) -> GroupMeasurement:
    x, se = kg_per_day / DAY, se_kg_per_day / DAY
    return GroupMeasurement(config, 0.0, span_s, segs, 100.0, 293.15, 120.0, x, se, x - 1.96 * se, x + 1.96 * se,
                            0.001, int(span_s), 1.0)  # fmt: skip


def test_a_quiet_half_clears_all_its_members_and_the_leaking_half_stays_suspect() -> None:
    ms = [gm(0, (0, 1, 2, 3), 1.0, 0.01), gm(1, (0, 1), 1.0, 0.01), gm(1, (2, 3), 0.0, 0.01)]
    v = judge(ms, 4)
    assert [s.leaking for s in v.segments] == [None, None, False, False]
    assert "isolate" in v.segments[0].reason and v.segments[0].hold_s is None
    # split the leaking half: 1 quiet, so 0 is convicted; 0 is also weighed alone here
    v2 = judge(ms + [gm(2, (0,), 1.0, 0.01), gm(2, (1,), 0.0, 0.01)], 4)
    assert v2.leaking == [0] and v2.decided
    assert v2.segments[0].ci95_low_kg_per_s * DAY < 1.0 < v2.segments[0].ci95_high_kg_per_s * DAY


def test_a_leaking_group_whose_other_member_is_cleared_convicts_the_one_never_weighed_alone() -> None:
    ms = [gm(0, (0, 1), 0.8, 0.01), gm(1, (1, 2), 0.0, 0.01)]  # 0 and 2 never apart from 1
    v = judge(ms, 3)
    assert v.leaking == [0] and math.isnan(v.segments[0].leak_kg_per_s)
    assert v.segments[0].lower_kg_per_s * DAY > 0.7


def test_two_leaks_and_a_hold_time_for_the_undecided() -> None:
    ms = [gm(0, (0,), 0.5, 0.01), gm(0, (1,), 0.3, 0.01), gm(0, (2,), 0.02, 0.02, span_s=600.0)]
    v = judge(ms, 3, min_leak_kg_per_s=0.05 / DAY)
    assert [s.leaking for s in v.segments] == [True, True, None]
    hold = v.segments[2].hold_s
    assert hold is not None and hold > 0  # a longer hold of 2 alone decides it
    with pytest.raises(ValueError, match="confidence"):
        judge(ms, 3, confidence=1.0)


def sequential_null_rate(confidence: float, looks: int, n: int, runs: int, rng: np.random.Generator) -> float:
    """Share of runs in which some look accuses one of n quiet segments, each weighed alone
    and known better at every look (se ~ look^-1.5, the estimate a random walk of it)."""
    accused = 0
    for _ in range(runs):
        sums = np.zeros(n)
        hit = False
        for k in range(1, looks + 1):
            sums += rng.normal(size=n) * math.sqrt(k**3 - (k - 1) ** 3)  # information grows as T^3
            se = 1.0 / k**1.5
            est = sums / k**3  # the weighted mean so far: a random walk, as a growing fit is
            ms = [gm(0, (i,), float(est[i]), se) for i in range(n)]
            v = judge(ms, n, confidence, min_leak_kg_per_s=1.0 / DAY, look=k if looks > 1 else None,
                      with_confidence=False)
            hit = hit or bool(v.leaking)
        accused += hit
    return accused / runs


@pytest.mark.parametrize("confidence", [0.8, 0.9])
def test_false_accusations_stay_within_the_stated_confidence(confidence: float) -> None:
    rng = np.random.default_rng(7)
    alpha, n, runs = 1.0 - confidence, 4, 1200
    one = sequential_null_rate(confidence, 1, n, runs, rng)
    bonferroni = 1.0 - (1.0 - alpha / n) ** n  # what one look should give: just under alpha
    slack = 3.0 * math.sqrt(bonferroni * (1 - bonferroni) / runs)
    assert abs(one - bonferroni) < slack, (one, bonferroni)
    many = sequential_null_rate(confidence, 8, n, runs // 3, rng)
    assert many <= alpha + 3.0 * math.sqrt(alpha * (1 - alpha) / (runs // 3)), many
    assert sum(look_alpha(alpha, k) for k in range(1, 10_000)) <= alpha
