"""Min/max per pixel column: what a plot of millions of points needs, in a few thousand.

A line plot of n >> width points draws, in each pixel column, a vertical stroke from the
column's minimum to its maximum; sending exactly those two values per column (in time order)
draws the same picture. Everything is numpy over the sorted time array: two searchsorted
calls and two reduceat calls, no Python loop over points.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def minmax_per_pixel(t_s: FloatArray, values: list[FloatArray], t0_s: float, t1_s: float,
                     width_px: int) -> tuple[FloatArray, list[FloatArray]]:
    """(t, [v...]) over [t0_s, t1_s]: all points when they fit in 2*width_px, else per column
    the min and the max of each series (at the column's first and last time, so the trace
    keeps its time order). t_s must be sorted; values are arrays of the same length."""
    lo = int(np.searchsorted(t_s, t0_s, side="left"))
    hi = int(np.searchsorted(t_s, t1_s, side="right"))
    t = t_s[lo:hi]
    vs = [v[lo:hi] for v in values]
    if len(t) <= 2 * width_px or width_px < 1:
        return t.copy(), [v.copy() for v in vs]
    edges = np.linspace(max(t0_s, float(t[0])), min(t1_s, float(t[-1])), width_px + 1)  # columns over the data
    starts = np.searchsorted(t, edges[:-1], side="left")
    ends = np.searchsorted(t, edges[1:], side="left")
    ends[-1] = len(t)
    keep = ends > starts  # empty columns (gaps in the data) give no point
    starts, ends = starts[keep], ends[keep]
    t_out = np.empty(2 * len(starts))
    t_out[0::2] = t[starts]
    t_out[1::2] = t[ends - 1]
    out = []
    for v in vs:
        pair = np.empty(2 * len(starts))
        pair[0::2] = np.minimum.reduceat(v, starts)
        pair[1::2] = np.maximum.reduceat(v, starts)
        out.append(pair)
    return t_out, out
