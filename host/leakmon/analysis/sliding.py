"""`fit_slope` of every window of a record in one vectorized O(N) pass.

Window sums come from prefix sums, taken over short overlapping rows of the record, each
relative to its first sample and its chord, so the sums of squares stay near a window's size
and do not cancel. numpy's cumsum is a serial loop (about 4 ns a sample, and there are five
series: t, y, t y, t^2, y^2), so each PREFIX_BLOCK samples are summed by one small triangular
matrix product (vectorized BLAS) and only the blocks' totals by cumsum.

The long-run variance (`lrv`) needs each window's residual prefix sums Y - b T at its 17 batch
edges: shifted slices of the t and y prefix sums (kept contiguous for that), weighed into the
cosine modes by one small matrix product. Edges of one class j = r, r + q, r + 2q, ...
(q = 16 / gcd(n, 16)) lie equally far apart, so each class is one strided view and one call
per operation (2 classes for n = 600). The modes of y alone would spare the per-window
b T term only if the batch means of t were exactly a line in the batch index: equal batches
(n divisible by 16) of exactly uniform times. Real clocks jitter, so the term stays.

A pass covers PASS_SAMPLES row samples (~14 k windows of 600 samples): small enough that its
buffers, the modes and lrv's spectral fit stay in cache, large enough that numpy's per-call
overhead (~100 calls a pass) is small. Buffers and the views into them are made once per
thread, and results go straight into the output arrays.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from leakmon.analysis import lrv
from leakmon.analysis.fit import FIELDS, FloatArray, SlopeFit, _as_series, spread

BLOCK_WINDOWS: Final = 8  # windows per row, in window lengths: rows overlap by 1/(this + 1)
PASS_SAMPLES: Final = 1 << 14  # row samples per pass: sized for the cache
PREFIX_BLOCK: Final = 16  # samples summed by one triangular matrix product
_TRIANGLE: Final = np.triu(np.ones((PREFIX_BLOCK, PREFIX_BLOCK)))  # x @ it: running sums
_MATMUL_ROWS: Final = 200_000 // PREFIX_BLOCK**2  # rows per product: below OpenBLAS threading
OUTPUTS: Final = tuple(f for f in FIELDS if f not in ("n", "t_end_s"))  # written by _pass


def _rows(a: FloatArray, start: int, n_rows: int, length: int, step: int) -> FloatArray:
    """n_rows overlapping views of `length` samples from a[start:], `step` apart; the last row
    is padded with the last sample where the record ends."""
    need = start + (n_rows - 1) * step + length
    if need > a.size:
        a = np.concatenate([a[start:], np.full(need - a.size, a[-1])])
        start = 0
    return np.ndarray((n_rows, length), np.float64, a, start * a.itemsize,
                      (step * a.itemsize, a.itemsize))  # fmt: skip


class _Scratch:
    """Buffers for a pass of up to n_rows rows of `block` windows of w samples, made once per
    thread and reused, with the views a full pass works through."""

    def __init__(self, n_rows: int, block: int, w: int) -> None:
        self.n_rows, self.block, self.w = n_rows, block, w
        # The five series t, y, t y, t^2, y^2 of each row, with a leading zero, padded to
        # whole prefix blocks; they become their prefix sums in place.
        self.m = -(-(block + w) // PREFIX_BLOCK)
        self.series = np.zeros((n_rows, 5, self.m * PREFIX_BLOCK))
        self.local = np.empty((n_rows, 5, self.m, PREFIX_BLOCK))
        self.carry = np.zeros((n_rows, 5, self.m))
        self.chord = np.empty(n_rows)
        self.real = np.empty((10, n_rows * block))
        modes = w >= lrv.MIN_SAMPLES
        self.edges = lrv.batch_edges(w).tolist() if modes else []
        self.g = np.empty((len(self.edges), n_rows * block))
        self.modes = np.empty((lrv.BATCHES - 2, n_rows * block)) if modes else None
        self.weights = lrv.edge_modes(w) if modes else np.empty((0, 0))
        self.full = self.views(n_rows)

    def views(self, n_rows: int) -> dict[str, Any]:
        """The (n_rows, block) views a pass of n_rows rows reads and writes."""
        block, w, n = self.block, self.w, n_rows * self.block
        shape = (n_rows, block)
        v: dict[str, Any] = {
            f: a.reshape(shape)
            for f, a in zip(("st", "sy", "sty", "stt", "syy", "tm", "ym", "sxx", "b", "sse"),
                            self.real[:, :n])  # fmt: skip
        }
        p = self.series[:n_rows].transpose(1, 0, 2)  # (5, rows, samples)
        v["sums"] = (p[:, :, w : w + block], p[:, :, :block],
                     self.real[:5, :n].reshape((5, *shape)))  # fmt: skip
        g = self.g[:, :n]
        v["edge"] = []
        # Edges j = r, r + q, r + 2q, ... lie exactly q w / 16 samples apart (q w / 16 whole):
        # one (edges, rows, block) strided view per class r, so a window of 600 samples takes
        # 2 calls per operation instead of 17.
        q = lrv.BATCHES // math.gcd(w, lrv.BATCHES)
        for r in range(min(q, len(self.edges))):
            e, d, count = self.edges[r], q * w // lrv.BATCHES, len(self.edges[r::q])
            v["edge"].append(tuple(
                as_strided(p[s, :, e:], (count, n_rows, block), (d * p.strides[2], *p.strides[1:]))
                for s in (0, 1)) + (g[r::q].reshape(count, *shape),))  # fmt: skip
        v["g"] = g
        v["modes"] = self.modes[:, :n] if self.modes is not None else None
        return v


def _row_chunks(x: FloatArray) -> FloatArray:
    """(rows / _MATMUL_ROWS, _MATMUL_ROWS, columns) view of a C-contiguous x's row chunks."""
    return x.reshape(-1, _MATMUL_ROWS, x.shape[1])


def _prefix_sums(rt: FloatArray, ry: FloatArray, sc: _Scratch) -> None:
    """Prefix sums along each row, with a leading zero, of t, y, t y, t^2 and y^2, where t, y
    are taken from the row's first sample and y also from its chord. Leaves each row's chord
    slope in sc.chord.

    numpy's cumsum is a serial loop (~4 ns a sample, and there are five series); here each
    PREFIX_BLOCK samples are summed by one small triangular matrix product (BLAS, vectorized),
    and only the blocks' totals by cumsum."""
    n_rows, length = rt.shape
    chord, x = sc.chord[:n_rows], sc.series[:n_rows]
    tt, yy, ty, t2, y2 = (x[:, s, 1 : length + 1] for s in range(5))
    np.subtract(rt, rt[:, :1], out=tt)
    np.subtract(ry, ry[:, :1], out=yy)
    span = tt[:, -1]
    np.divide(yy[:, -1], span, out=chord, where=span != 0.0)
    chord[span == 0.0] = 0.0
    np.multiply(tt, chord[:, None], out=ty)
    yy -= ty
    np.multiply(tt, yy, out=ty)
    np.multiply(tt, tt, out=t2)
    np.multiply(yy, yy, out=y2)
    x[:, :, 0] = 0.0  # the leading zero and the padding: a NaN left there by the last pass
    x[:, :, length + 1 :] = 0.0  # would spoil a whole block of this one (NaN * 0 is NaN)
    local = sc.local[:n_rows]
    xs, ls = x.reshape(-1, PREFIX_BLOCK), local.reshape(-1, PREFIX_BLOCK)
    whole = xs.shape[0] // _MATMUL_ROWS * _MATMUL_ROWS  # one batched call (looped in C)
    if whole:
        np.matmul(_row_chunks(xs[:whole]), _TRIANGLE, out=_row_chunks(ls[:whole]))
    np.matmul(xs[whole:], _TRIANGLE, out=ls[whole:])
    carry = sc.carry[:n_rows]
    np.cumsum(local[:, :, :-1, -1], axis=-1, out=carry[:, :, 1:])
    np.add(local, carry[..., None], out=x.reshape(local.shape))


def _pass(
    t: FloatArray, y: FloatArray, start: int, stop: int, sc: _Scratch,
    out: list[FloatArray],
) -> None:  # fmt: skip
    """Windows start..stop-1 into out[field][start:stop]. Works on whole rows, as
    (rows, block) arrays; a last, partial pass goes through scratch outputs."""
    w, block = sc.w, sc.block
    n_out = stop - start
    n_rows = -(-n_out // block)
    n = n_rows * block
    shape = (n_rows, block)
    v = sc.full if n_rows == sc.n_rows else sc.views(n_rows)
    rt = _rows(t, start, n_rows, block + w - 1, block)
    ry = _rows(y, start, n_rows, block + w - 1, block)
    _prefix_sums(rt, ry, sc)
    np.subtract(*v["sums"])
    st, sy, sty, stt, syy = v["st"], v["sy"], v["sty"], v["stt"], v["syy"]
    tm, ym, sxx, b, sse = v["tm"], v["ym"], v["sxx"], v["b"], v["sse"]
    full = n == n_out
    slope, intercept, stderr_o, lo_o, hi_o, rsig, neff_o, beta_o, tmid = (
        (a[start:stop] if full else np.empty(n)).reshape(shape) for a in out
    )
    np.multiply(st, 1.0 / w, out=tm)
    np.multiply(sy, 1.0 / w, out=ym)
    np.multiply(st, tm, out=st)
    np.subtract(stt, st, out=sxx)
    np.multiply(sy, tm, out=st)
    np.subtract(sty, st, out=sty)  # Sxy
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(sty, sxx, out=b)
    modes = None
    if v["modes"] is not None:
        for tv, yv, gv in v["edge"]:  # the residual prefix sums Y - b T at each batch edge
            np.multiply(b, tv, out=gv)
            np.subtract(yv, gv, out=gv)
        modes = lrv.small_matmul(sc.weights, v["g"], v["modes"])
    np.multiply(b, sty, out=sty)
    np.multiply(sy, ym, out=sse)
    np.subtract(syy, sse, out=sse)
    sse -= sty
    np.maximum(sse, 0.0, out=sse)
    stderr, half, n_eff, beta = spread(w, sxx.reshape(-1), sse.reshape(-1), modes)
    chord = sc.chord[:n_rows, None]
    np.add(b, chord, out=slope)
    np.subtract(slope, half.reshape(shape), out=lo_o)
    np.add(slope, half.reshape(shape), out=hi_o)
    stderr_o[...] = stderr.reshape(shape)
    neff_o[...] = n_eff.reshape(shape)
    beta_o[...] = beta.reshape(shape)
    np.multiply(sse, 1.0 / (w - 2.0), out=sse)
    np.sqrt(sse, out=rsig)
    np.multiply(tm, chord, out=st)
    st += ym
    np.add(st, ry[:, :1], out=intercept)
    np.add(tm, rt[:, :1], out=tmid)
    if not full:
        for a, o in zip(out, (slope, intercept, stderr_o, lo_o, hi_o, rsig, neff_o, beta_o, tmid)):
            a[start:stop] = o.reshape(-1)[:n_out]


def sliding_slopes(
    t_s: npt.ArrayLike, y: npt.ArrayLike, window_n: int, workers: int = 1
) -> SlopeFit[FloatArray]:
    """`fit_slope` of every run of window_n consecutive samples, O(N) by prefix sums.

    Entry i covers samples i .. i+window_n-1, so there are len(t_s) - window_n + 1 entries.
    A window whose samples all share one time gives NaN. A NaN or infinite sample may give
    NaN in any window of the (at most two) rows of BLOCK_WINDOWS window lengths that hold it,
    as prefix sums do, and in no other window.
    `n` is a read-only broadcast of window_n (it is the same for every window). Passes can
    run on `workers` threads (numpy releases the GIL in each operation; it pays only on idle
    cores, so the default is 1); the result does not depend on it.
    """
    if window_n < 3:
        raise ValueError(f"window_n must be >= 3, got {window_n}")
    t, v = _as_series(t_s, y, 0)
    t, v = np.ascontiguousarray(t), np.ascontiguousarray(v)
    n_win = max(t.size - window_n + 1, 0)
    # Windows per row: several window lengths (less overlap), but within a pass's budget
    # for long windows, and no more than the record holds.
    block = max(1, min(max(min(BLOCK_WINDOWS * window_n, PASS_SAMPLES), window_n), n_win))
    rows = max(1, PASS_SAMPLES // (block + window_n))
    per_pass = block * rows
    out = {f: np.empty(n_win) for f in (*OUTPUTS, "t_end_s")}
    arrays = [out[f] for f in OUTPUTS]
    starts = list(range(0, n_win, per_pass))
    workers = max(1, min(workers, len(starts)))

    def run(share: list[int]) -> None:
        sc = _Scratch(rows, block, window_n)
        for start in share:
            _pass(t, v, start, min(start + per_pass, n_win), sc, arrays)

    shares = [starts[i::workers] for i in range(workers)]
    if workers > 1:  # numpy releases the GIL inside each operation
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, shares))
    elif starts:
        run(starts)
    out["t_end_s"][:] = t[window_n - 1 :]
    return SlopeFit(n=np.broadcast_to(np.int64(window_n), (n_win,)), **out)
