"""Mass balance per connected group: groups, configurations, settling, and group leaks
against the virtual board's physics (what the holes let escape)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon.analysis.massbalance import (
    Hatch,
    HatchTimeline,
    Station,
    configurations,
    connected_groups,
    equalization_time_s,
    measure,
    segment_series,
)
from leakmon.sim.vboard import physics

CHAIN = Station(("a", "b", "c", "d"), (75.0, 72.0, 55.0, 100.0),
                (Hatch("a-b", 0, 1, 0.512), Hatch("b-c", 1, 2, 0.512), Hatch("c-d", 2, 3, 0.512)))


def test_groups_follow_open_hatches_and_configurations_cut_only_where_groups_change() -> None:
    assert connected_groups(4, CHAIN.hatches, [True, False, True]) == ((0, 1), (2, 3))
    assert connected_groups(4, CHAIN.hatches, [False] * 3) == ((0,), (1,), (2,), (3,))
    tl = HatchTimeline.from_schedules([True, True, True], [[(100.0, False)], [], [(200.0, False), (300.0, True)]])
    cfgs = configurations(CHAIN, tl, 0.0, 400.0)
    assert [(c.t_start_s, c.t_stop_s, c.groups) for c in cfgs] == [
        (0.0, 100.0, ((0, 1, 2, 3),)), (100.0, 200.0, ((0,), (1, 2, 3))), (200.0, 300.0, ((0,), (1, 2), (3,))),
        (300.0, 400.0, ((0,), (1, 2, 3)))]  # fmt: skip
    # a hatch in parallel with an open one changes no group: no cut
    loop = Station(("a", "b"), (1.0, 1.0), (Hatch("x", 0, 1), Hatch("y", 0, 1)))
    tl2 = HatchTimeline.from_schedules([True, True], [[(50.0, False)], []])
    assert len(configurations(loop, tl2, 0.0, 100.0)) == 1
    with pytest.raises(ValueError, match="positive"):
        Station(("a",), (0.0,), ())
    with pytest.raises(ValueError, match="two different segments"):
        Station(("a", "b"), (1.0, 1.0), (Hatch("x", 0, 0),))


def plant_record(cfg: dict, t: np.ndarray, noise_pa: float, noise_k: float, seed: int):
    plant = physics.Plant(cfg)
    n = len(cfg["segments"])
    p, tk = np.empty((n, t.size)), np.empty((n, t.size))
    for k, tt in enumerate(t):
        for i in range(n):
            p[i, k], tk[i, k] = plant.state(i, float(tt))
    rng = np.random.default_rng(seed)
    return p + rng.normal(0, noise_pa, p.shape), tk + rng.normal(0, noise_k, tk.shape)


def two_rooms(valve_cda_m2: float, open_at_s: float, p_b_pa: float, leak_kg_per_day: float = 0.0) -> dict:
    """Two rooms at one steady temperature (a swing would keep a small valve busy for ever)."""
    segs = [{"name": n, "volume_m3": v, "p0_pa": p0, "tau_s": 0.0, "wall": {"t_k": 295.0}}
            for n, v, p0 in (("a", 40.0, 101325.0), ("b", 60.0, p_b_pa))]
    links = [{"name": "valve", "a": 0, "b": 1, "cda_m2": valve_cda_m2, "schedule": [[0.0, 0.0], [open_at_s, 1.0]]}]
    if leak_kg_per_day:
        links.append({"name": "hole", "a": 0, "b": -1, "leak": True, "kg_per_s": leak_kg_per_day / 86400,
                      "schedule": [[0.0, 1.0]]})
    return {"step_s": 1.0, "segments": segs, "links": links,
            "boundaries": [{"name": "vacuum", "p_pa": 0.0, "t_k": 293.15}]}


def test_equalization_time_matches_the_simulated_orifice_flow() -> None:
    cda = 2e-5  # a small valve: seconds to minutes
    cfg = two_rooms(cda, 0.0, 101325.0 - 50.0)
    t = np.arange(0.0, 3000.0, 0.5)
    p, _ = plant_record(cfg, t, 0.0, 0.0, 0)
    diff = p[0] - p[1]
    t_eq = float(t[np.argmax(np.abs(diff) < 0.5)])  # physics: down to 1 % of the difference
    predicted = equalization_time_s(50.0, 101300.0, 295.0, 40.0, 60.0, cda)
    assert 0.9 * predicted == pytest.approx(t_eq, rel=0.15)  # sqrt law: 1 % is left at 0.9 t


def test_settling_is_derived_from_the_opening_and_skipped() -> None:
    cda = 2e-5
    station = Station(("a", "b"), (40.0, 60.0), (Hatch("valve", 0, 1, cda),))
    cfg = two_rooms(cda, 1200.0, 101325.0 - 50.0, leak_kg_per_day=0.3)
    t = np.arange(0.0, 4000.0, 1.0)
    p, tk = plant_record(cfg, t, 0.3, 0.002, 3)
    tl = HatchTimeline.from_schedules([False], [[(1200.0, True)]])
    cfgs, ms = measure(station, tl, t, p, tk)
    dp0 = float(np.mean(p[0, 1190:1200] - p[1, 1190:1200]))
    predicted = equalization_time_s(abs(dp0), 101300.0, 295.0, 40.0, 60.0, cda)
    assert cfgs[1].settle_s >= 0.8 * predicted and "valve opened" in cfgs[1].settle_reason
    assert cfgs[1].settle_s < 3 * predicted
    assert all(m.t_start_s >= 1200.0 + cfgs[1].settle_s for m in ms if m.config == 1)
    # closing a hatch moves no gas: only the sample in flight is skipped
    tl_close = HatchTimeline.from_schedules([True], [[(1200.0, False)]])
    cfgs2, _ = measure(station, tl_close, t, p, tk)
    assert cfgs2[1].settle_s == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_group_leaks_cover_what_the_holes_let_escape(seed: int) -> None:
    """Three modules with thermal swings and a choked hole in one: every group's 95 %
    interval against the mass the physics let out, over many groups and seeds."""
    rng = np.random.default_rng(seed)
    where = int(rng.integers(0, 3))
    segs = [{"name": f"m{i}", "volume_m3": float(v), "p0_pa": 101325.0, "tau_s": float(rng.uniform(600, 1800)),
             "t0_k": 294.0 + i, "wall": {"t_k": 294.0 + i, "swing_k": 0.4, "period_s": float(rng.uniform(1800, 5400))}}
            for i, v in enumerate(rng.uniform(30, 120, 3))]  # fmt: skip
    links = [{"name": "h01", "a": 0, "b": 1, "cda_m2": 0.5, "schedule": [[0.0, 1.0], [1200.0, 0.0]]},
             {"name": "h12", "a": 1, "b": 2, "cda_m2": 0.5, "schedule": [[0.0, 1.0], [2400.0, 0.0]]},
             {"name": "hole", "a": where, "b": -1, "leak": True, "cda_m2": 1.5e-7, "schedule": [[0.0, 1.0]]}]
    cfg = {"step_s": 1.0, "segments": segs, "links": links,
           "boundaries": [{"name": "vacuum", "p_pa": 0.0, "t_k": 293.15}]}
    t = np.arange(0.0, 3600.0, 1.0)
    p, tk = plant_record(cfg, t, 0.3, 0.002, seed)
    station = Station(("m0", "m1", "m2"), tuple(s["volume_m3"] for s in segs),
                      (Hatch("h01", 0, 1, 0.5), Hatch("h12", 1, 2, 0.5)))
    tl = HatchTimeline.from_schedules([True, True], [[(1200.0, False)], [(2400.0, False)]])
    _, ms = measure(station, tl, t, p, tk)
    assert [m.segments for m in ms] == [(0, 1, 2), (0,), (1, 2), (0,), (1,), (2,)]
    plant = physics.Plant(cfg)
    misses = 0
    for m in ms:
        grid = np.linspace(m.t_start_s, m.t_stop_s, 50)
        true = float(np.mean([sum(plant.leak_kg_per_s(i, float(g)) for i in m.segments) for g in grid]))
        misses += not m.ci95_low_kg_per_s <= true <= m.ci95_high_kg_per_s
        lo, hi = m.ci95_pa_per_s
        assert lo * m.volume_m3 / m.pa_per_kg / m.volume_m3 == pytest.approx(m.ci95_low_kg_per_s)
        assert hi > lo
    assert misses <= 1


def test_segment_series_averages_sensors_and_marks_unsensed_segments() -> None:
    t = np.arange(0.0, 10.0)
    series = {0: (t, np.full(10, 100.0), np.full(10, 290.0)), 1: (t + 0.5, np.full(10, 102.0), np.full(10, 292.0)),
              2: (t, np.full(10, 50.0), np.full(10, 280.0))}
    grid, p, tk = segment_series(series, {0: 0, 1: 0, 2: 1}, 3)
    assert grid[0] == 1.0 and grid[-1] == 9.0  # channel 0 samples inside every span
    assert np.allclose(p[0], 101.0) and np.allclose(tk[1], 280.0)
    assert np.all(np.isnan(p[2]))
    with pytest.raises(ValueError, match="no channel"):
        segment_series(series, {}, 3)
    assert math.isfinite(equalization_time_s(10.0, 1e5, 293.0, 1.0, 1.0, 1e-4))


def test_hatch_states_from_the_data_are_dated_on_the_safe_side() -> None:
    """A hatch closed at 600 s and reopened at 1800 s between two rooms with their own
    thermal swings: seen closed no earlier than it closed, open no later than it opened."""
    from leakmon.analysis.hatchdetect import detect

    segs = [{"name": n, "volume_m3": v, "p0_pa": 101325.0, "tau_s": 0.0,
             "wall": {"t_k": tk, "swing_k": sw, "period_s": 1200.0}}
            for n, v, tk, sw in (("a", 40.0, 294.0, 0.4), ("b", 60.0, 296.0, 0.1))]
    cfg = {"step_s": 1.0, "segments": segs, "boundaries": [],
           "links": [{"name": "h", "a": 0, "b": 1, "cda_m2": 0.5, "schedule": [[0.0, 1.0], [600.0, 0.0], [1800.0, 1.0]]}]}
    t = np.arange(0.0, 3000.0, 1.0)
    p, _ = plant_record(cfg, t, 0.3, 0.002, 5)
    station = Station(("a", "b"), (40.0, 60.0), (Hatch("h", 0, 1, 0.5),))
    tl, changes = detect(station, t, p)
    assert [c.is_open for c in changes] == [False, True], [c.evidence for c in changes]
    assert 600.0 <= changes[0].t_s <= 600.0 + 2 * 120.0 and "decoupled" in changes[0].evidence
    assert 1800.0 - 2 * 120.0 <= changes[1].t_s <= 1800.0
    assert tl.source == "data" and not tl.state_at(1000.0)[0] and tl.state_at(2500.0)[0]
