"""Records with a known truth, for tests and validation: the simulator's physics plus noise.

`chamber_record` samples leakmon.sim.vboard.chamber.Chamber (the same model the virtual board
runs) and adds white sensor noise; `choked_record` is a hole leaking into vacuum;
`segments_record` is several volumes joined and parted by hatches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from leakmon import units
from leakmon.sim.vboard.chamber import Chamber

FloatArray = npt.NDArray[np.float64]


def chamber_truth(chamber: Chamber, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Noise-free (pressure_pa, temperature_k) of the chamber at each time."""
    states = [chamber.state(float(x)) for x in t_s]  # the model is scalar MicroPython code
    return np.array([s[0] for s in states]), np.array([s[1] for s in states])


def add_noise(truth: tuple[FloatArray, FloatArray], noise_pa: float, noise_k: float,
              rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:  # fmt: skip
    """White sensor noise on pressure and temperature."""
    p, tk = truth
    return p + rng.normal(0.0, noise_pa, p.shape), tk + rng.normal(0.0, noise_k, tk.shape)


def choked_record(t_s: FloatArray, volume_m3: float, diameter_m: float, p0_pa: float,
                  temperature_k: float = 293.15, cd: float = 0.6) -> FloatArray:  # fmt: skip
    """Noise-free pressure of a volume leaking into vacuum through a round hole."""
    area = math.pi * diameter_m**2 / 4.0
    tau = volume_m3 / (cd * area * units.choked_flow_speed_m_per_s(temperature_k))
    return p0_pa * np.exp(-t_s / tau)


def segments_record(
    t_s: FloatArray, volumes_m3: Sequence[float], leaks_kg_per_s: Sequence[float],
    schedule: Sequence[tuple[float, Sequence[Sequence[int]]]], p0_pa: float = 101325.0,
    temperature_k: float = 293.15,
) -> FloatArray:  # fmt: skip
    """Noise-free pressures (segments x samples): connected segments share one pressure and
    their leaks; a hatch opening equalizes instantly."""
    vol, leak = np.asarray(volumes_m3, float), np.asarray(leaks_kg_per_s, float)
    mol = p0_pa * vol / (units.R * temperature_k)
    out = np.empty((vol.size, t_s.size))
    bounds = [float(s) for s, _ in schedule] + [math.inf]
    for k, (start, groups) in enumerate(schedule):
        listed = {i for g in groups for i in g}
        parts = [list(g) for g in groups] + [[i] for i in range(vol.size) if i not in listed]
        sel = (t_s >= start) & (t_s < bounds[k + 1])
        span = min(bounds[k + 1], float(t_s[-1])) - start
        for g in parts:
            total, v_g, rate = mol[g].sum(), vol[g].sum(), leak[g].sum() / units.M
            out[np.ix_(np.array(g), np.flatnonzero(sel))] = (total - rate * (t_s[sel] - start)) \
                * units.R * temperature_k / v_g  # fmt: skip
            mol[g] = (total - rate * span) * vol[g] / v_g
    return out
