"""Min/max-per-pixel decimation against a plain loop, and the bounded ring it reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leakmon.dashboard.decimate import minmax_per_pixel
from leakmon.dashboard.history import History, Ring


def brute_minmax(t: np.ndarray, v: np.ndarray, t0: float, t1: float, width: int) -> list[tuple[float, float]]:
    sel = (t >= t0) & (t <= t1)
    t, v = t[sel], v[sel]
    lo, hi = t[0], t[-1]
    edges = np.linspace(lo, hi, width + 1)
    out = []
    for i in range(width):
        last = i == width - 1
        m = (t >= edges[i]) & ((t <= edges[i + 1]) if last else (t < edges[i + 1]))
        if m.any():
            out.append((float(v[m].min()), float(v[m].max())))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_minmax_matches_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.1, 20000))
    t[5000:5010] += 500.0  # a gap: empty columns give no point
    t = np.sort(t)
    v = rng.standard_t(3, len(t))
    t0, t1 = float(t[100]) - 0.01, float(t[-200])
    width = int(rng.integers(50, 400))
    tt, (vv,) = minmax_per_pixel(t, [v], t0, t1, width)
    want = brute_minmax(t, v, t0, t1, width)
    assert len(vv) == 2 * len(want)
    assert np.allclose(vv[0::2], [w[0] for w in want])
    assert np.allclose(vv[1::2], [w[1] for w in want])
    assert np.all(np.diff(tt) >= 0)
    # The envelope is kept: the extremes of the range are in the answer.
    sel = (t >= t0) & (t <= t1)
    assert vv.min() == v[sel].min() and vv.max() == v[sel].max()


def test_small_ranges_come_back_whole() -> None:
    t = np.arange(100.0)
    tt, (vv,) = minmax_per_pixel(t, [t * 2], 10.0, 19.0, 500)
    assert tt.tolist() == list(range(10, 20)) and vv.tolist() == [2.0 * x for x in range(10, 20)]


def test_ring_keeps_the_newest_rows_in_order_and_bounded() -> None:
    r = Ring(("t", "v"), 1000)
    nbytes = r._buf.nbytes
    t = 0
    for n in [1, 7, 300, 999, 1000, 5000, 3, 250] * 20:
        x = np.arange(t, t + n, dtype=float)
        r.append([x, -x])
        t += n
        v = r.view()
        assert len(r) == min(t, 1000)
        assert v[0].tolist() == list(np.arange(t - len(r), t, dtype=float))
        assert np.array_equal(v[1], -v[0])
    assert r._buf.nbytes == nbytes


def test_history_ranges_and_csv_rows() -> None:
    h = History(raw_capacity=10_000, update_capacity=100)
    t = np.arange(0, 1000, 0.1)
    h.add_raw(0, t, 1e5 - t, 290 + 0 * t)
    h.add_update(0, (1.0, 1e5, 290.0, 0.1, 0.05, 0.15))
    rows = h.raw_rows(0, 10.0, 20.0)
    assert rows.shape == (3, 101) and rows[0, 0] == pytest.approx(10.0)
    r = h.raw_range(0, 0, 1e9, 100)
    assert len(r["t_s"]) == 200 and min(r["pressure_pa"]) == pytest.approx(1e5 - t[-1])
    assert h.update_range(0, 0, 10, 10)["leak_rate_pa_per_s"] == [0.1]
    assert h.raw_range(7, 0, 1, 10) == {"t_s": [], "pressure_pa": [], "temperature_k": []}


def test_json_has_no_nan_or_infinity() -> None:
    from leakmon.dashboard.api import dumps

    assert dumps({"a": [1.5, math.nan, math.inf], "b": {"c": -math.inf, "d": "x"}, "e": (2,)}) == \
        '{"a":[1.5,null,null],"b":{"c":null,"d":"x"},"e":[2]}'
    assert dumps({"ok": [1.0, 2.0]}) == '{"ok":[1.0,2.0]}'
