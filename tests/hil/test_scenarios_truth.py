"""Every shipped scenario on the virtual board: the firmware samples, the host fits.

One-segment scenarios: each sensor's leak rate is held against its segment's ground truth.
Multi-segment scenarios (hatches): the mass balance of every connected group and the
verdict on every segment are held against the physical leak, the mass the simulator lets
escape through each segment's holes, never against a fit of the simulated state."""

from __future__ import annotations

import math
import struct
from collections import defaultdict

import numpy as np
import pytest
from leakmon import wire
from leakmon.analysis.slope import fit_slope
from leakmon.analysis.verdict import judge
from leakmon.link.node import Node
from leakmon.sim import scenario as scenario_mod
from leakmon.sim.board import VirtualBoard
from leakmon.sim.truth import truth_table
from leakmon.units import M_AIR_KG_PER_MOL, R_J_PER_MOL_K
from leakmon.wire.stream import SampleBlock

pytestmark = pytest.mark.hil


def windows(name: str) -> tuple[int, list[tuple[float, float]]]:
    """Sampling period and the windows (device s) where a straight-line fit is fair."""
    if name == "pressure_decay":
        m = next(p for p in scenario_mod.load(name).phases if p.name == "measure")
        return 100_000, [(m.start_s + 1.0, m.end_s - 1.0)]
    if name == "large_leak":  # choked: tau ~ 9 min, so a 30 s window is near straight
        return 100_000, [(5.0, 35.0)]
    return 100_000, [(5.0, 125.0)]


def sample(sc: scenario_mod.Scenario, period_us: int, t_end_s: float) -> tuple[dict[int, str], dict[int, tuple]]:
    """Run the board until t_end_s of device time; per channel (segment, (t, P, T))."""
    blocks: dict[int, list[SampleBlock]] = defaultdict(list)
    with VirtualBoard(sc, seed=21, speed=0) as board, Node.open(board.port) as node:
        hello = node.handshake()
        if period_us != hello.period_us:
            node.command(wire.C_SET_PERIOD, struct.pack("<I", period_us))
            node.read()
            blocks.clear()
        t_last = 0.0
        while t_last < t_end_s:
            for item in node.read():
                if isinstance(item, SampleBlock):
                    blocks[item.channel].append(item)
                    t_last = max(t_last, float(item.t_s[-1]))
    segment_of = {}
    for c in hello.channels:
        spec = next(s for s in sc.sensors if (s.bus, s.addr) == (c.bus, c.addr)
                    and (s.mux_channel if s.mux_addr is not None else wire.NO_MUX) == c.mux)
        segment_of[c.channel] = spec.segment or sc.segments[0].name
    series = {ch: tuple(np.concatenate([getattr(b, f) for b in bl]) for f in ("t_s", "pressure_pa", "temperature_k"))
              for ch, bl in blocks.items()}
    return segment_of, series


MULTI = [n for n in scenario_mod.shipped() if len(scenario_mod.load(n).segments) > 1]
SINGLE = [n for n in scenario_mod.shipped() if n not in MULTI]


@pytest.mark.parametrize("name", SINGLE)
def test_estimates_match_the_ground_truth(micropython, name):
    sc = scenario_mod.load(name)
    period_us, wins = windows(name)
    segment_of, series = sample(sc, period_us, max(t2 for _, t2 in wins) + 1.0)
    assert set(segment_of) == set(series)
    volume = {s.name: s.volume_m3 for s in sc.segments}
    for k, (t1, t2) in enumerate(wins):
        grid = np.arange(t1, t2 + 1e-9, 1.0)
        truth = truth_table(sc, grid)
        for ch, (t, p, temp) in series.items():
            seg = segment_of[ch]
            sel = (t >= t1) & (t <= t2)
            f = fit_slope(t[sel], p[sel] / temp[sel])
            t_ref = float(np.mean(temp[sel]))
            est, se = -float(f.slope) * t_ref, float(f.stderr) * t_ref
            # The same fit of the true gas amount (P/T) over the same window: what the
            # measuring chain must reproduce, whatever the gas does meanwhile.
            true_pt = truth[f"{seg}.pressure_pa"] / truth[f"{seg}.temperature_k"]
            true = -float(fit_slope(grid, true_pt).slope) * t_ref
            assert abs(est - true) <= 3 * se + 0.01 * abs(true), (name, seg, (t1, t2), est, se, true)
            if steady(name, k):
                # Where nothing else moves gas, that is the physical leak of the segment.
                loss = float(np.mean(truth[f"{seg}.net_loss_kg_per_s"]))
                leak = loss * R_J_PER_MOL_K * t_ref / (M_AIR_KG_PER_MOL * volume[seg])
                assert abs(true - leak) <= 0.03 * abs(leak) + 1e-6, (name, seg, true, leak)


def steady(name: str, window: int) -> bool:
    """Windows in which each segment's gas changes only by its own steady leak."""
    return name in ("steady_leak", "sealed", "pressure_decay")


def physical_leak_kg_per_s(sc: scenario_mod.Scenario, segments: list[str], t1: float, t2: float) -> float:
    """Mean mass flow out through the holes of these segments over [t1, t2]: what escaped."""
    grid = np.linspace(t1, t2, 200)
    truth = truth_table(sc, grid)
    return float(np.mean(sum(truth[f"{s}.leak_kg_per_s"] for s in segments)))


@pytest.mark.parametrize("name", MULTI)
def test_mass_balance_and_verdict_hold_the_physical_leak(micropython, name):
    from leakmon.cli import siteview

    sc = scenario_mod.load(name)
    site = siteview.load_site(name)
    # station_hatches: zvezda is cut off at 3 h; 20 min of that is plenty
    t_end = 12_000.0 if name == "station_hatches" else sc.duration_s
    segment_of, series = sample(sc, 1_000_000, t_end)
    index = {n: i for i, n in enumerate(site.station.names)}
    result = siteview.analyse(site, series, {ch: index[seg] for ch, seg in segment_of.items()})
    names = site.station.names
    misses, checked = [], 0
    for m in result.groups:
        true = physical_leak_kg_per_s(sc, [names[i] for i in m.segments], m.t_start_s, m.t_stop_s)
        checked += 1
        if not m.ci95_low_kg_per_s <= true <= m.ci95_high_kg_per_s:
            misses.append((names_of(names, m.segments), m.config, m.leak_kg_per_s * 86400, true * 86400))
    # 95 % intervals: one group in twenty may miss; more than the binomial's 0.1 % tail fails
    # (three scenarios on every CI run: a 1 % tail would fail one healthy run in thirty)
    assert len(misses) <= allowed_misses(checked, 0.05, 1e-3), (checked, misses)
    leaks = {s.name: physical_leak_kg_per_s(sc, [s.name], 0.0, t_end) for s in sc.segments}
    named = {names[i] for i in result.verdict.leaking}
    assert named == {s for s, x in leaks.items() if x > 0}, (named, leaks)
    assert result.verdict.decided, [(names[v.segment], v.reason) for v in result.verdict.segments]
    # The verdict's bounds meet each leaking segment's physical leak. At the stated 99 % a
    # bound misses up to 0.25 % of healthy runs by design (Bonferroni over four one-sided
    # bounds; 1 miss in 160 segment verdicts over 40 board seeds of station_two_leaks), and the
    # board's noise differs run to run (its clock runs while the host sets the period), so a
    # per-run check at 99 % would fail one CI run in a hundred with nothing wrong. Judged again
    # at 99.99 %, a healthy run fails ~1e-4 of the time, while a bias over ~3.7 standard errors
    # still fails. The verdict weighs one constant leak from every configuration while a
    # hole's flow falls with the pressure: the bounds must reach the range the physical flow
    # took over the record, [min, max], not its mean at one time.
    wide = judge(result.groups, site.station.n, 0.9999)
    grid = np.linspace(0.0, t_end, 400)
    truth = truth_table(sc, grid)
    for v, w in zip(result.verdict.segments, wide.segments, strict=True):
        if v.leaking:
            flow = truth[f"{names[v.segment]}.leak_kg_per_s"]
            assert w.lower_kg_per_s <= float(np.max(flow)) and float(np.min(flow)) <= w.upper_kg_per_s, \
                (names[v.segment], w, float(np.min(flow)) * 86400, float(np.max(flow)) * 86400)


def allowed_misses(n: int, p: float, tail: float) -> int:
    """Largest k with P(more than k misses of n at rate p) still above tail."""
    k, cdf = 0, (1 - p) ** n
    while 1.0 - cdf > tail:
        k += 1
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
    return k


def names_of(names: tuple[str, ...], segs: tuple[int, ...]) -> str:
    return "+".join(names[i] for i in segs)
