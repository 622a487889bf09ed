"""`fit_slope` of every window of a record in one vectorized O(N) pass.

Window sums come from prefix sums (cumsum), taken over short overlapping rows of the record,
each relative to its first sample and its chord, so the sums of squares stay near a window's
size and do not cancel. The five sums are cumulated as two complex arrays and one real one
(numpy's cumsum is latency-bound, and a complex add does two sums for the price of one). The
long-run variance (`lrv`) needs each window's residual sums over its 16 batches: those are
differences of the same prefix sums at the batch edges, i.e. contiguous slices, and their
cosine modes are one small matrix product per pass. Each pass works on a cache-sized piece in
buffers made once per thread (fresh temporaries would be page-faulted in again on every pass)
and writes straight into the output arrays.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from leakmon.analysis import lrv
from leakmon.analysis.fit import FIELDS, FloatArray, SlopeFit, _as_series, spread

BLOCK_WINDOWS: Final = 8  # windows per row, in window lengths: rows overlap by 1/(this + 1)
PASS_SAMPLES: Final = 1 << 15  # row samples per pass: sized for the cache


def _rows(a: FloatArray, start: int, n_rows: int, length: int, step: int) -> FloatArray:
    """n_rows overlapping views of `length` samples from a[start:], `step` apart; the last row
    is padded with the last sample where the record ends."""
    need = start + (n_rows - 1) * step + length
    seg = a[start:need]
    if need > a.size:
        seg = np.concatenate([seg, np.full(need - a.size, a[-1])])
    return as_strided(seg, (n_rows, length), (step * seg.itemsize, seg.itemsize), writeable=False)


class _Scratch:
    """Buffers for one pass of n_rows rows, made once per thread and reused."""

    def __init__(self, n_rows: int, length: int, block: int, w: int) -> None:
        self.z = np.empty((2, n_rows, length + 1), np.complex128)
        self.z[:, :, 0] = 0.0  # the leading zero of every prefix sum
        self.zty = np.empty((n_rows, length + 1))
        self.zty[:, 0] = 0.0
        self.real = np.empty((10, n_rows * block))
        self.edges = np.empty((lrv.BATCHES + 1, n_rows * block))
        self.modes = np.empty((lrv.BATCHES - 2, n_rows * block))
        self.weights = lrv.edge_modes(w) if w >= lrv.MIN_SAMPLES else np.empty((0, 0))
        self.chord = np.empty(n_rows)


def _prefix_sums(rt: FloatArray, ry: FloatArray, sc: _Scratch) -> None:
    """Prefix sums along each row, with a leading zero, of (t, y), (t^2, y^2) packed in two
    complex series and t y in a real one, where t, y are taken from the row's first sample
    and y also from its chord. Leaves each row's chord slope in sc.chord."""
    n_rows = rt.shape[0]
    z = sc.z[:, :n_rows]
    zr, zi = z.real[:, :, 1:], z.imag[:, :, 1:]
    tt, yy, chord = zr[0], zi[0], sc.chord[:n_rows]
    np.subtract(rt, rt[:, :1], out=tt)
    np.subtract(ry, ry[:, :1], out=yy)
    np.divide(yy[:, -1], tt[:, -1], out=chord, where=tt[:, -1] != 0.0)
    chord[tt[:, -1] == 0.0] = 0.0
    np.multiply(tt, chord[:, None], out=zr[1])
    yy -= zr[1]
    np.multiply(tt, yy, out=sc.zty[:n_rows, 1:])
    np.multiply(tt, tt, out=zr[1])
    np.multiply(yy, yy, out=zi[1])
    np.cumsum(z[:, :, 1:], axis=2, out=z[:, :, 1:])
    np.cumsum(sc.zty[:n_rows, 1:], axis=1, out=sc.zty[:n_rows, 1:])


def _pass(
    t: FloatArray, y: FloatArray, w: int, block: int, start: int, stop: int, sc: _Scratch,
    out: dict[str, npt.NDArray[Any]],
) -> None:  # fmt: skip
    """Windows start..stop-1 into out[field][start:stop]. Works on whole rows, as
    (rows, block) arrays; a last, partial pass goes through scratch outputs."""
    n_out = stop - start
    n_rows = -(-n_out // block)
    n = n_rows * block
    rt = _rows(t, start, n_rows, block + w - 1, block)
    ry = _rows(y, start, n_rows, block + w - 1, block)
    _prefix_sums(rt, ry, sc)
    shape = (n_rows, block)
    z = sc.z[:, :n_rows]
    sty, st, sy, stt, syy, tm, ym, sxx, b, sse = (a.reshape(shape) for a in sc.real[:, :n])
    np.subtract(sc.zty[:n_rows, w : w + block], sc.zty[:n_rows, :block], out=sty)
    np.subtract(z[0, :, w : w + block].real, z[0, :, :block].real, out=st)
    np.subtract(z[0, :, w : w + block].imag, z[0, :, :block].imag, out=sy)
    np.subtract(z[1, :, w : w + block].real, z[1, :, :block].real, out=stt)
    np.subtract(z[1, :, w : w + block].imag, z[1, :, :block].imag, out=syy)
    full = n == n_out
    o = {f: (a[start:stop] if full else np.empty(n)).reshape(shape) for f, a in out.items()}
    np.multiply(st, 1.0 / w, out=tm)
    np.multiply(sy, 1.0 / w, out=ym)
    np.multiply(st, tm, out=st)
    np.subtract(stt, st, out=sxx)
    np.multiply(sy, tm, out=st)
    np.subtract(sty, st, out=sty)  # Sxy
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(sty, sxx, out=b)
    np.multiply(b, sty, out=sty)
    np.multiply(sy, ym, out=sse)
    np.subtract(syy, sse, out=sse)
    sse -= sty
    np.maximum(sse, 0.0, out=sse)
    modes = _batch_modes(z[0], w, block, b, sc, n) if w >= lrv.MIN_SAMPLES else None
    stderr, half, n_eff, beta = spread(w, sxx.reshape(-1), sse.reshape(-1), modes)
    chord = sc.chord[:n_rows, None]
    np.add(b, chord, out=o["slope"])
    np.subtract(o["slope"], half.reshape(shape), out=o["ci95_low"])
    np.add(o["slope"], half.reshape(shape), out=o["ci95_high"])
    o["stderr"][...] = stderr.reshape(shape)
    o["n_eff"][...] = n_eff.reshape(shape)
    o["noise_exponent"][...] = beta.reshape(shape)
    np.multiply(sse, 1.0 / (w - 2.0), out=sse)
    np.sqrt(sse, out=o["residual_sigma"])
    np.multiply(tm, chord, out=st)
    st += ym
    np.add(st, ry[:, :1], out=o["intercept"])
    np.add(tm, rt[:, :1], out=o["t_mid_s"])
    if not full:
        for f, a in out.items():
            a[start:stop] = o[f].reshape(-1)[:n_out]


def _batch_modes(
    z: npt.NDArray[np.complex128], w: int, block: int, b: FloatArray, sc: _Scratch, n: int
) -> FloatArray:  # fmt: skip
    """Each window's residual batch modes (lrv), (BATCHES - 2, windows): Y - b T of the row's
    (t, y) prefix sums at the window's batch edges, weighed by lrv.edge_modes in one matrix
    product. Neither the window's first prefix sum nor its level matters: the weights of
    every mode sum to zero, and the modes are orthogonal to a constant."""
    edges = lrv.batch_edges(w)
    g = sc.edges[:, :n]
    for j in range(lrv.BATCHES + 1):
        e, gj = int(edges[j]), g[j].reshape(b.shape)
        np.multiply(b, z[:, e : e + block].real, out=gj)
        np.subtract(z[:, e : e + block].imag, gj, out=gj)
    return lrv.small_matmul(sc.weights, g, sc.modes[:, :n])


def sliding_slopes(
    t_s: npt.ArrayLike, y: npt.ArrayLike, window_n: int, workers: int = 1
) -> SlopeFit[FloatArray]:
    """`fit_slope` of every run of window_n consecutive samples, O(N) by prefix sums.

    Entry i covers samples i .. i+window_n-1, so there are len(t_s) - window_n + 1 entries.
    A window whose samples all share one time gives NaN. `n` is a read-only broadcast of
    window_n (it is the same for every window). Passes can run on `workers` threads (numpy
    releases the GIL in each operation; it pays only on idle cores, so the default is 1);
    the result does not depend on it.
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
    out: dict[str, npt.NDArray[Any]] = {f: np.empty(n_win) for f in FIELDS if f != "n"}
    starts = list(range(0, n_win, per_pass))
    workers = max(1, min(workers, len(starts)))

    def run(share: list[int]) -> None:
        sc = _Scratch(rows, block + window_n - 1, block, window_n)
        for start in share:
            _pass(t, v, window_n, block, start, min(start + per_pass, n_win), sc, out)

    shares = [starts[i::workers] for i in range(workers)]
    if workers > 1:  # numpy releases the GIL inside each operation
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, shares))
    elif starts:
        run(starts)
    out["t_end_s"][:] = t[window_n - 1 :]
    out["n"] = np.broadcast_to(np.int64(window_n), (n_win,))
    return SlopeFit(**out)
