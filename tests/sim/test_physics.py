"""The scenario physics (host/leakmon/sim/vboard/physics.py) against closed forms:
conservation, equilibration, choked and subsonic orifice flow, the fill transient."""

from __future__ import annotations

import math

import numpy as np
import pytest
from leakmon.sim import scenario
from leakmon.sim.vboard import physics
from leakmon.sim.vboard.physics import M_AIR, R_CRIT, R, orifice_mol_per_s

GAMMA = 1.4


def wall(t_k: float = 293.15, **kw: float) -> dict:
    return dict(t_k=t_k, **kw)


def plant(segments: list[dict], links: list[dict], step_s: float = 0.5, boundaries: list[dict] | None = None):
    return physics.Plant({"step_s": step_s, "segments": segments, "links": links,
                          "boundaries": boundaries or [{"name": "vacuum", "p_pa": 0.0, "t_k": 293.15},
                                                       {"name": "ambient", "p_pa": 101325.0, "t_k": 293.15}]})


def moles(pl: physics.Plant, t_s: float) -> list[float]:
    out = []
    for i, v in enumerate(pl.vol):
        p, temp = pl.state(i, t_s)
        out.append(p * v / (physics.R * temp))
    return out


def test_steady_leak_matches_its_closed_form():
    sc = scenario.load("steady_leak")
    pl, ch = sc.plant(), sc.chamber()
    for t in (0.0, 0.05, 1.0, 99.9, 450.0, 3600.0, 86400.0):
        p, temp = pl.state(0, t)
        p_cf, t_cf = ch.state(t)
        assert p == pytest.approx(p_cf, rel=1e-10) and temp == pytest.approx(t_cf, rel=1e-12)
    # The README's figure: 2.5 g/day in 50 L at 20 C is a loss of 0.0487 Pa/s.
    assert ch.leak_rate_pa_per_s(293.15) == pytest.approx(0.0487, abs=5e-5)
    assert pl.leak_kg_per_s(0, 10.0) == pytest.approx(0.0025 / 86400, rel=1e-12)


def test_mass_is_conserved_across_hatches():
    """Three segments at different pressures and temperatures, thermal lag, hatches
    opening and closing, no leak: the total amount of gas never changes."""
    segs = [dict(name="a", volume_m3=40.0, p0_pa=101325.0, t0_k=300.0, tau_s=200.0, wall=wall(295.0, swing_k=1.0, period_s=300.0)),
            dict(name="b", volume_m3=90.0, p0_pa=95000.0, tau_s=50.0, wall=wall(290.0)),
            dict(name="c", volume_m3=60.0, p0_pa=99000.0, tau_s=0.0, wall=wall(293.0, drift_k_per_s=1e-4))]
    links = [dict(name="ab", a=0, b=1, cda_m2=0.4, schedule=[[0.0, 1.0], [300.0, 0.0], [500.0, 0.5]]),
             dict(name="bc", a=1, b=2, cda_m2=0.3, schedule=[[0.0, 0.0], [120.0, 1.0]])]
    pl = plant(segs, links, step_s=1.0)
    n0 = sum(pl.n)
    for t in np.linspace(0.0, 900.0, 181):
        pl.advance(float(t))
        assert sum(pl.n) == pytest.approx(n0, rel=1e-13)
    # And the moles read through state() (interpolated between steps) agree as well.
    assert sum(moles(pl, 900.0)) == pytest.approx(n0, rel=1e-12)


def test_two_segments_equilibrate_through_an_open_hatch_without_overshoot():
    segs = [dict(name="a", volume_m3=1.0, p0_pa=100000.0, wall=wall()),
            dict(name="b", volume_m3=3.0, p0_pa=90000.0, wall=wall())]
    cda = 1e-4  # a 13 mm hole: equalizes in tens of seconds
    pl = plant(segs, [dict(name="h", a=0, b=1, cda_m2=cda)], step_s=0.01)
    # The first moments follow the orifice law (subsonic: 100/90 < 1.89).
    f0 = orifice_mol_per_s(cda, 100000.0, 293.15, 90000.0)
    n_a0 = pl.n[0]
    pl.advance(0.05)
    assert (n_a0 - pl.n[0]) / 0.05 == pytest.approx(f0, rel=5e-3)
    p_eq = (100000.0 * 1.0 + 90000.0 * 3.0) / 4.0
    prev = (100000.0, 90000.0)
    for t in np.arange(0.5, 300.0, 0.5):
        pa, _ = pl.state(0, float(t))
        pb, _ = pl.state(1, float(t))
        assert pa >= pb - 1e-6 and pa <= prev[0] + 1e-9 and pb >= prev[1] - 1e-9  # monotone, no overshoot
        prev = (pa, pb)
    assert prev[0] == pytest.approx(p_eq, rel=1e-9) and prev[1] == pytest.approx(p_eq, rel=1e-9)


def test_a_huge_hatch_stays_stable_at_a_large_step():
    """Two ISS-sized modules through a 0.64 m2 hatch (time constant ~ms) at 1 s steps."""
    segs = [dict(name="a", volume_m3=75.0, p0_pa=101325.0, tau_s=600.0, wall=wall(295.0)),
            dict(name="b", volume_m3=100.0, p0_pa=100000.0, tau_s=600.0, wall=wall(293.0))]
    pl = plant(segs, [dict(name="h", a=0, b=1, cda_m2=0.5)], step_s=1.0)
    for t in range(1, 50):
        pa, _ = pl.state(0, float(t))
        pb, _ = pl.state(1, float(t))
        # Backward Euler leaves, after the first step only, the small difference that
        # drives the step's mean flow (1325 Pa equalized in one 1 s step: 0.4 Pa).
        assert 0.0 <= pa - pb < (1.0 if t == 1 else 1e-3) and 100000.0 < pb < pa < 101325.0


def test_choked_leak_decays_exponentially_with_the_reference_tau():
    sc = scenario.load("large_leak")
    seg = sc.segments[0]
    leak = sc.links[0]
    assert leak.cda_m2 is not None
    tau = scenario.choked_tau_s(seg.volume_m3, leak.cda_m2, 293.15)
    # REFERENCE section 2: tau ~ V / (Cd A 199 m/s) for air at 20 C.
    assert tau == pytest.approx(seg.volume_m3 / (leak.cda_m2 * 199.0), rel=5e-3)
    assert 500 < tau < 560  # "minutes"
    t = np.arange(0.0, 900.0, 5.0)
    p = sc.truth(t)["chamber.pressure_pa"]
    np.testing.assert_allclose(p, 101325.0 * np.exp(-t / tau), rtol=2e-3)
    tau_fit = -1.0 / np.polyfit(t, np.log(p), 1)[0]
    assert tau_fit == pytest.approx(tau, rel=1e-2)
    assert tau_fit == pytest.approx(tau, rel=1e-3)  # much better than asked, in fact


def test_orifice_flow_is_choked_above_1_89_and_subsonic_below():
    cda, t = 1e-6, 293.15
    assert 1.0 / R_CRIT == pytest.approx(1.893, abs=1e-3)
    # Choked: the flow does not depend on the downstream pressure...
    p_up = 200000.0
    choked = orifice_mol_per_s(cda, p_up, t, 0.0)
    assert orifice_mol_per_s(cda, p_up, t, p_up * R_CRIT * 0.999) == choked
    assert orifice_mol_per_s(cda, p_up, t, 50000.0) == choked
    # ... and is continuous into the subsonic branch, which falls to zero at equal pressures.
    assert orifice_mol_per_s(cda, p_up, t, p_up * R_CRIT * 1.0001) == pytest.approx(choked, rel=1e-6)
    assert orifice_mol_per_s(cda, p_up, t, p_up * 0.9) < 0.7 * choked
    assert orifice_mol_per_s(cda, p_up, t, p_up) == 0.0
    # Near ambient it is the incompressible orifice: mdot = Cd A sqrt(2 rho dP).
    for dp in (10.0, 100.0, 1000.0):
        rho = 101325.0 * M_AIR / (R * t)
        mdot = orifice_mol_per_s(cda, 101325.0 + dp, t, 101325.0) * M_AIR
        assert mdot == pytest.approx(cda * math.sqrt(2 * rho * dp), rel=dp / 101325.0 + 1e-4)


def test_subsonic_leak_to_ambient_stops_at_ambient():
    segs = [dict(name="a", volume_m3=0.01, p0_pa=110000.0, wall=wall())]
    pl = plant(segs, [dict(name="leak", a=0, b=-2, cda_m2=2e-7, leak=True)], step_s=0.5)
    p_prev = 110000.0
    rates = []
    for t in np.arange(10.0, 4000.0, 10.0):
        p, _ = pl.state(0, float(t))
        assert 101325.0 <= p <= p_prev
        rates.append(pl.leak_kg_per_s(0, float(t)))
        p_prev = p
    assert p_prev == pytest.approx(101325.0, abs=0.5)
    # Not an exponential: near ambient the flow goes as sqrt(dP), so it ends in finite time.
    assert rates[0] > 0 and rates[-1] < 1e-3 * rates[0]


FILL = """
name = "fill"
[simulation]
step_s = 0.02
[[supplies]]
name = "supply"
pressure_pa = 120000.0
[[segments]]
name = "part"
volume_m3 = 0.0005
pressure_pa = 101325.0
thermal_tau_s = {tau}
wall = {{ temperature_k = 293.15 }}
[[phases]]
name = "fill"
duration_s = 3.0
[[phases]]
name = "stabilize"
duration_s = 120.0
[[valves]]
between = ["supply", "part"]
diameter_mm = {d_mm}
open_during = ["fill"]
[[sensors]]
chip = "BMP390"
"""


def test_adiabatic_fill_heats_then_decays_with_the_set_time_constant():
    tau = 12.0
    sc = scenario.loads(FILL.format(tau=tau, d_mm=0.8))
    t = np.arange(3.0, 123.0, 0.5)
    tb = sc.truth(t)
    dt_k = tb["part.temperature_k"] - 293.15
    assert dt_k[0] > 5.0  # the fill heated the gas by several kelvin
    # After the valve closes the excess decays as exp(-t/tau), and the pressure with it.
    tau_fit = -1.0 / np.polyfit(t[t < 60], np.log(dt_k[t < 60]), 1)[0]
    assert tau_fit == pytest.approx(tau, rel=1e-3)
    p = tb["part.pressure_pa"]
    p_inf = p[-1] * 293.15 / tb["part.temperature_k"][-1]
    np.testing.assert_allclose(p / p_inf - 1.0, dt_k / 293.15, rtol=1e-9, atol=1e-12)


def test_a_fast_fill_reaches_the_adiabatic_limit():
    """Filling a rigid vessel faster than heat can leave: n_f T_f = n_0 T_0 + gamma dn T_s."""
    sc = scenario.loads(FILL.format(tau=1e6, d_mm=3.0))
    tb = sc.truth([3.0])
    p_f, t_f = tb["part.pressure_pa"][0], tb["part.temperature_k"][0]
    assert p_f == pytest.approx(120000.0, rel=1e-6)
    expected = 120000.0 * 293.15 / (101325.0 + (120000.0 - 101325.0) / GAMMA)
    assert t_f == pytest.approx(expected, rel=1e-4)  # 306.8 K


def test_reads_do_not_change_the_trajectory():
    """The grid depends on the config only: dense reads, sparse reads, same truth."""
    sc = scenario.load("pressure_decay")
    dense, sparse = sc.plant(), sc.plant()
    for t in np.arange(0.0, 39.5, 0.013):
        dense.state(0, float(t))
    for t in (5.0, 20.0):
        sparse.state(0, t)
    assert dense.state(0, 39.5) == sparse.state(0, 39.5)
    assert dense.steps == sparse.steps
    # Time only moves forward: a read before the last step returns the state at that step.
    assert dense.state(0, 10.0) == dense.state(0, dense.t_prev)
