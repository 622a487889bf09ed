"""`fit_slope` of every window of a record in one vectorized O(N) pass.

Window sums come from prefix sums (cumsum), taken over short overlapping rows of the record,
each relative to its first sample and its chord, so the sums of squares stay near a window's
size and do not cancel. Two tricks make it fast: the eight sums are cumulated as four complex
arrays (numpy's cumsum is latency-bound, and a complex add does two sums for the price of
one), and the lag-1 residual sum comes from squared *differences* of neighbours, which are
small and well conditioned, instead of products of neighbours. Each pass works on a
cache-sized piece in buffers made once per thread (fresh temporaries would be page-faulted
in again on every pass) and writes straight into the output arrays.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from leakmon.analysis.fit import (
    CONFIDENCE,
    FIELDS,
    RHO_MAX,
    FloatArray,
    SlopeFit,
    _as_series,
)
from leakmon.analysis.student_t import upper_quantile_into

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

    def __init__(self, n_rows: int, length: int, block: int) -> None:
        self.z = np.empty((4, n_rows, length + 1), np.complex128)
        self.z[:, :, 0] = 0.0  # the leading zero of every prefix sum
        self.sums = np.empty((3, n_rows, block), np.complex128)
        self.real = np.empty((14, n_rows * block))
        self.chord = np.empty(n_rows)


def _prefix_sums(rt: FloatArray, ry: FloatArray, w: int, block: int, sc: _Scratch) -> None:
    """Prefix sums along each row, with a leading zero, of 8 series packed in 4 complex ones:
    (t, y), (t^2, y^2), (t y, dt^2), (dt dy, dy^2), where t, y are taken from the row's first
    sample and y also from its chord, and dt, dy are differences of neighbours. Leaves them in
    sc.z, each row's chord slope in sc.chord and (t, y) of every window's first and last
    sample, in that frame, in sc.real[0:4]."""
    n_rows, length = rt.shape
    z = sc.z[:, :n_rows]
    zr, zi = z.real[:, :, 1:], z.imag[:, :, 1:]
    tt, yy, chord = zr[0], zi[0], sc.chord[:n_rows]
    np.subtract(rt, rt[:, :1], out=tt)
    np.subtract(ry, ry[:, :1], out=yy)
    np.divide(yy[:, -1], tt[:, -1], out=chord, where=tt[:, -1] != 0.0)
    chord[tt[:, -1] == 0.0] = 0.0
    np.multiply(tt, chord[:, None], out=zr[1])
    yy -= zr[1]
    n = n_rows * block
    for i, (k, a) in enumerate((k, a) for k in (0, w - 1) for a in (tt, yy)):
        sc.real[i, :n].reshape(n_rows, block)[...] = a[:, k : k + block]
    np.multiply(tt, tt, out=zr[1])
    np.multiply(yy, yy, out=zi[1])
    np.multiply(tt, yy, out=zr[2])
    dt, dy = zr[3], zi[3]
    dt[:, 0] = dy[:, 0] = 0.0  # the row's first sample has no neighbour before it
    np.subtract(tt[:, 1:], tt[:, :-1], out=dt[:, 1:])
    np.subtract(yy[:, 1:], yy[:, :-1], out=dy[:, 1:])
    np.multiply(dt, dt, out=zi[2])
    np.multiply(dt, dy, out=dt)
    np.multiply(dy, dy, out=dy)
    np.cumsum(z[:, :, 1:], axis=2, out=z[:, :, 1:])


def _window_sums(w: int, block: int, n_rows: int, sc: _Scratch) -> list[FloatArray]:
    """St, Sy, Stt, Syy, Sty over each window's w samples; Sdtdt, Sdtdy, Sdydy over its
    w - 1 neighbour pairs (those sums start one prefix later). Views into sc."""
    z, ws, n = sc.z[:, :n_rows], sc.sums[:, :n_rows], n_rows * block
    for i, (k, first) in enumerate(((0, 0), (1, 0), (3, 1))):
        np.subtract(z[k, :, w : w + block], z[k, :, first : first + block], out=ws[i])
    sty, dtdt = sc.real[4, :n].reshape(n_rows, block), sc.real[5, :n].reshape(n_rows, block)
    np.subtract(z[2, :, w : w + block].real, z[2, :, :block].real, out=sty)
    np.subtract(z[2, :, w : w + block].imag, z[2, :, 1 : 1 + block].imag, out=dtdt)
    flat = [ws[i].reshape(-1) for i in range(3)]
    return [flat[0].real, flat[0].imag, flat[1].real, flat[1].imag, sc.real[4, :n],
            sc.real[5, :n], flat[2].real, flat[2].imag]  # fmt: skip


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
    _prefix_sums(rt, ry, w, block, sc)
    shape = (n_rows, block)
    sums = _window_sums(w, block, n_rows, sc)
    st, sy, stt, syy, sty, dtdt, dtdy, dydy = (s.reshape(shape) for s in sums)
    t_first, y_first, t_last, y_last, _, _, tm, ym, sxx, b, sse, lag, r, tmp = (
        a.reshape(shape) for a in sc.real[:, :n])  # fmt: skip
    full = n == n_out
    o = {f: (a[start:stop] if full else np.empty(n)).reshape(shape) for f, a in out.items()}
    np.multiply(st, 1.0 / w, out=tm)
    np.multiply(sy, 1.0 / w, out=ym)
    np.multiply(st, tm, out=tmp)
    np.subtract(stt, tmp, out=sxx)
    np.multiply(st, ym, out=tmp)
    np.subtract(sty, tmp, out=tmp)  # Sxy
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(tmp, sxx, out=b)
    np.multiply(b, tmp, out=tmp)
    np.multiply(sy, ym, out=sse)
    np.subtract(syy, sse, out=sse)
    sse -= tmp
    np.maximum(sse, 0.0, out=sse)
    _lag(sse, b, tm, ym, (t_first, y_first, t_last, y_last), (dtdt, dtdy, dydy), lag, r, tmp)
    chord = sc.chord[:n_rows, None]
    np.add(b, chord, out=o["slope"])
    np.multiply(tm, chord, out=tmp)
    tmp += ym
    np.add(tmp, ry[:, :1], out=o["intercept"])
    np.add(tm, rt[:, :1], out=o["t_mid_s"])
    _spread(w, sxx, sse, lag, o, r, tmp)
    if not full:
        for f, a in out.items():
            a[start:stop] = o[f].reshape(-1)[:n_out]


def _lag(
    sse: FloatArray, b: FloatArray, tm: FloatArray, ym: FloatArray,
    ends: tuple[FloatArray, ...], pairs: tuple[FloatArray, ...], lag: FloatArray,
    r: FloatArray, tmp: FloatArray,
) -> None:  # fmt: skip
    """lag = sum r_j r_(j+1) from sum (r_(j+1) - r_j)^2 = 2 SSE - r_first^2 - r_last^2 - 2 lag,
    where r_(j+1) - r_j = dy - b dt; r and tmp are scratch."""
    dtdt, dtdy, dydy = pairs
    np.multiply(b, dtdt, out=lag)
    lag -= dtdy
    lag -= dtdy
    lag *= b
    lag += dydy  # sum of squared residual differences
    np.multiply(sse, 2.0, out=tmp)
    np.subtract(tmp, lag, out=lag)
    for t_e, y_e in (ends[:2], ends[2:]):
        np.subtract(t_e, tm, out=r)
        r *= b
        np.subtract(y_e, r, out=r)
        r -= ym
        r *= r
        lag -= r
    lag *= 0.5


def _spread(
    w: int, sxx: FloatArray, sse: FloatArray, lag: FloatArray, o: dict[str, npt.NDArray[Any]],
    rho: FloatArray, tmp: FloatArray,
) -> None:  # fmt: skip
    """Residual sigma, rho1, AR(1)-inflated standard error, n_eff and the t interval."""
    np.multiply(sse, 1.0 / (w - 2.0), out=tmp)
    np.sqrt(tmp, out=o["residual_sigma"])
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(lag, sse, out=o["rho1"])
        o["rho1"][sse == 0.0] = 0.0
        np.clip(o["rho1"], 0.0, RHO_MAX, out=rho)
        np.subtract(1.0, rho, out=tmp)
        rho += 1.0
        np.divide(rho, tmp, out=rho)  # inflation = (1 + rho) / (1 - rho)
        np.divide(rho, sxx, out=tmp)
        np.sqrt(tmp, out=o["stderr"])
    o["stderr"] *= o["residual_sigma"]
    np.divide(float(w), rho, out=o["n_eff"])
    np.subtract(o["n_eff"], 2.0, out=tmp)
    np.maximum(tmp, 1.0, out=tmp)
    upper_quantile_into(0.5 + CONFIDENCE / 2.0, tmp, rho)
    rho *= o["stderr"]
    np.subtract(o["slope"], rho, out=o["ci95_low"])
    np.add(o["slope"], rho, out=o["ci95_high"])


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
        sc = _Scratch(rows, block + window_n - 1, block)
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
