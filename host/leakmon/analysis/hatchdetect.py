"""Hatch states from the data: two segments joined by an open hatch share one pressure;
closed, their pressures go their own ways (their own leaks, their own thermal swings).

Each hatch's pressure difference is fitted window by window. A difference that drifts
(slope beyond DECOUPLED_Z standard errors) proves the hatch closed: gas would have flowed
to cancel it. Anything else counts as open, because treating two segments as one group is
never wrong for the mass balance (their total gas is what it is, whatever flows between
them), while splitting a group that still exchanges gas is. For the same reason a closing
is dated at the end of the first window that shows it, and a reopening at the start of the
last window that still showed the hatch apart (it may have opened inside it). Each change
carries its evidence, in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import FloatArray
from leakmon.analysis.massbalance import HatchTimeline, Station

DECOUPLED_Z = 8.0  # high: sensor noise is rarely white, and a false "closed" biases groups
WINDOW_S = 120.0


@dataclass(frozen=True)
class HatchChange:
    hatch: int
    t_s: float
    is_open: bool
    evidence: str


def window_slopes(t: FloatArray, y: FloatArray, n_per: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """OLS slope, its white-noise standard error and end time of consecutive windows of n_per samples."""
    k = t.size // n_per
    tw = t[: k * n_per].reshape(k, n_per)
    yw = y[: k * n_per].reshape(k, n_per)
    tc = tw - tw.mean(axis=1, keepdims=True)
    yc = yw - yw.mean(axis=1, keepdims=True)
    sxx = np.einsum("ij,ij->i", tc, tc)
    slope = np.einsum("ij,ij->i", tc, yc) / sxx
    resid = yc - slope[:, None] * tc
    sigma = np.sqrt(np.einsum("ij,ij->i", resid, resid) / max(n_per - 2, 1))
    return slope, sigma / np.sqrt(sxx), tw[:, -1]


def detect(station: Station, t_s: npt.ArrayLike, pressure_pa: npt.ArrayLike,
           window_s: float = WINDOW_S) -> tuple[HatchTimeline, list[HatchChange]]:  # fmt: skip
    """A hatch timeline (source "data") and the changes with their evidence."""
    t = np.asarray(t_s, np.float64)
    p = np.asarray(pressure_pa, np.float64)
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    n_per = max(int(round(window_s / dt)), 5)
    changes: list[HatchChange] = []
    per_hatch: list[list[tuple[float, bool]]] = []
    for h, hatch in enumerate(station.hatches):
        d = p[hatch.a] - p[hatch.b]
        mine: list[tuple[float, bool]] = []
        if t.size >= 2 * n_per and np.all(np.isfinite(d)):
            slope, se, t_end = window_slopes(t, d, n_per)
            k = slope.size
            level = d[: k * n_per].reshape(k, n_per).mean(axis=1)
            sigma_level = np.maximum(se * window_s / np.sqrt(12.0), 1e-9)  # se of a window's mean, about
            z = np.abs(slope) / np.maximum(se, 1e-12)
            state, open_level = True, float(level[0])
            for w in range(k):
                if state and z[w] > DECOUPLED_Z:
                    when = float(t_end[w])  # late: the union was right until proven apart
                    why = (f"closed by {when:.0f} s: the pressures decoupled, their difference drifting "
                           f"{slope[w] * 3600:+.1f} Pa/h (z = {z[w]:.0f}) over {t_end[w] - window_s:.0f}..{when:.0f} s")
                elif (not state and z[w] < 3.0 and abs(level[w] - open_level) < 5.0 * sigma_level[w]
                      and w > 0 and abs(level[w - 1] - open_level) > 10.0 * sigma_level[w]):
                    when = float(t_end[w - 1]) - window_s  # early: the reopening may lie in the window before
                    why = (f"open from {when:.0f} s: the difference fell back to its open level "
                           f"({open_level:+.2f} Pa, from {level[w - 1]:+.2f} Pa) and stopped drifting")
                else:
                    if state:
                        open_level = float(level[w])
                    continue
                state = not state
                mine.append((when, state))
                changes.append(HatchChange(h, when, state, f"{hatch.name} {why}"))
        per_hatch.append(mine)
    timeline = HatchTimeline.from_schedules([True] * len(station.hatches), per_hatch, "data")
    return timeline, changes
