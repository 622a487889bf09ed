"""The live estimate of many channels from running sums: what a gateway computes at its
cadence, equal to `estimate.estimate_leak` of the same window to rounding (a test holds
every field to 1e-9).

`estimate_leak` refits the window: O(n) a channel (0.45 ms at 600 s of 10 Hz), two thirds of
it numpy's per-call overhead, paid again for every channel. Yet all it needs is a handful
of sums, over the window or over its lrv batches, of a few series: t^k (to the lack-of-fit
quartic's Gram), t^k y and y^2 for y = P/T and ln(P/T), P and T. So each channel keeps
their prefix sums per CHUNK samples (`WindowSums`), and an estimate reads them at the
window's 17 batch edges, adding from the window itself the few samples between an edge and
its chunk's boundary: O(1) in the window's length. The channels due together are estimated
in one vectorized pass (`estimate_windows`); the model is chosen by `decay.decide` and the
estimate made by `estimate.estimate_of`, as in the one-shot path.

Precision: the series are taken from references near the windows the prefix serves (t,
P/T and ln(P/T) of the newest sample when it starts), so the sums stay near a window's
size; each is computed and summed per chunk (or edge) in double precision, at most CHUNK
of them, and the prefix sums, whose differences cancel, are kept in extended precision
(np.longdouble), as is the binomial re-centring of the powers of t on the window's mean.
The prefix restarts at the window's start once it holds one to two windows (a phase per
node) before it, so its span stays under three windows. These go to `estimate_leak`
itself: a window holding a non-positive P/T, one too short for the lrv batches, one alone
at its stream position, an unbounded one, and the last stretch's line when neither model
holds (made from the window's samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from leakmon.analysis import lrv
from leakmon.analysis.decay import (
    LOF_DEGREE, LOF_MIN_N, LocalRate, curvature_z, decide, exp_from_log_fit, local_rate,
)
from leakmon.analysis.estimate import LeakEstimate, estimate_leak, estimate_of
from leakmon.analysis.fit import SlopeFit, split_rows, spread
from leakmon.analysis.incremental import TrailingWindow

ESTIMATE_MIN_SAMPLES: Final = 5  # below this no model can be checked
CHUNK: Final = 16  # samples per stored prefix sum: an edge adds at most CHUNK - 1 samples
MIN_SAMPLES: Final = max(lrv.MIN_SAMPLES, LOF_MIN_N, CHUNK)  # shorter windows: estimate_leak
MIN_GROUP: Final = 2  # windows at one position; one alone is refitted (cheaper, and exact)
_TOP: Final = 2 * LOF_DEGREE  # the Gram needs sums of t^0 .. t^8
# The series, each from its references: u = t - t0, y1 = P/T - v0, y2 = ln(P/T) - w0.
_U: Final = 0  # u^1 .. u^8 at rows 0 .. 7
_Y1: Final = _TOP  # y1 u^0 .. y1 u^4 at rows 8 .. 12
_Y2: Final = _Y1 + LOF_DEGREE + 1  # y2 u^0 .. y2 u^4 at rows 13 .. 17
_YY: Final = _Y2 + LOF_DEGREE + 1  # y1^2, y2^2
_P: Final = _YY + 2
_TK: Final = _P + 1
_BAD: Final = _TK + 1  # P/T not positive (no logarithm): such a window is refitted
SERIES: Final = _BAD + 1
_ROWS_Y: Final = [_Y1, _Y2]
_BINOM: Final = np.array([[math.comb(k, j) if j <= k else 0 for j in range(_TOP + 1)] for k in range(_TOP + 1)],
                         dtype=np.longdouble)  # fmt: skip
_LOWER: Final = np.tril_indices(_TOP + 1)
_HANKEL: Final = np.add.outer(np.arange(LOF_DEGREE + 1), np.arange(LOF_DEGREE + 1))


def _series(t: npt.NDArray[np.float64], p: npt.NDArray[np.float64], tk: npt.NDArray[np.float64],
            refs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # fmt: skip
    """(k, SERIES, m) of k channels' (k, m) samples; refs (k, 3): t0, v0, w0 per channel.
    In double precision: a chunk or an edge sums at most CHUNK of them, each to 1e-16 of
    itself, into prefix sums kept in extended precision, whose differences cancel."""
    k, m = t.shape
    out = np.empty((k, SERIES, m))
    u = t - refs[:, :1]  # exact where t and t0 lie within a factor of two (Sterbenz)
    out[:, _U] = u
    for j in range(1, _TOP):
        np.multiply(out[:, _U + j - 1], out[:, _U], out=out[:, _U + j])
    v = p / tk  # as estimate_leak divides
    bad = ~(v > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.log(v)
    out[:, _Y1] = v
    out[:, _Y1] -= refs[:, 1:2]
    out[:, _Y2] = w
    out[:, _Y2] -= refs[:, 2:3]
    if bad.any():
        out[:, _Y1][bad] = 0.0
        out[:, _Y2][bad] = 0.0
    for y in _ROWS_Y:
        np.multiply(out[:, y : y + 1], out[:, _U : _U + LOF_DEGREE], out=out[:, y + 1 : y + LOF_DEGREE + 1])
    np.square(out[:, _ROWS_Y], out=out[:, _YY : _YY + 2])
    out[:, _P] = p
    out[:, _TK] = tk
    out[:, _BAD] = bad
    return out


class WindowSums:
    """Prefix sums of a channel's series per CHUNK samples, for its TrailingWindow.

    Chunk c holds stream indices base + c CHUNK .. base + (c + 1) CHUNK - 1; base is a
    multiple of CHUNK, so the channels of a node that sample together share their chunks
    and are summed together (`catch_up`)."""

    def __init__(self, restart_phase: float = 0.0) -> None:
        """restart_phase in [0, 1): the prefix restarts once it holds 1 + restart_phase
        windows before the window's start; a gateway gives each node its own, so that its
        nodes do not all re-sum their windows on the same second."""
        if not 0.0 <= restart_phase < 1.0:
            raise ValueError(f"restart_phase must be in [0, 1), got {restart_phase}")
        self.restart_after = 1.0 + restart_phase
        self.base = -1  # stream index of prefix 0; -1 before the first catch-up
        self.chunks = 0  # whole chunks summed
        self.refs = np.zeros(3)  # t0, v0, w0
        self.prefix = np.zeros((SERIES, 64), dtype=np.longdouble)  # column c: sums before chunk c

    def restart_if_due(self, win: TrailingWindow) -> None:
        """Start again at the window's start when the prefix lies more than restart_after
        windows before it (its span stays under three) or its next chunk has left the window."""
        first = win.first_index
        nxt = self.base + self.chunks * CHUNK
        if self.base >= 0 and nxt >= first and first - self.base <= self.restart_after * (win.added - first):
            return
        self.base = -(-first // CHUNK) * CHUNK
        self.chunks = 0
        # The references from the newest sample: the windows this prefix serves have their
        # means within restart_after + 1/2 windows of it, so re-centring t^8 on a mean
        # cancels at most ~(2 * 2.5)^8 C(8, 4) ~ 3e7 of extended precision's 1e-19.
        t0, p0, tk0 = win.samples(win.added - 1, win.added)[:, 0]
        v0 = p0 / tk0
        self.refs = np.array([t0, v0, math.log(v0) if v0 > 0.0 else 0.0])

    def extend(self, running: npt.NDArray[np.longdouble]) -> None:
        """Take the next whole chunks as their running sums (SERIES, chunks) from the end
        of the prefix held (a node's channels: one cumsum for all, `catch_up`)."""
        todo, c = running.shape[1], self.chunks
        if c + todo + 1 > self.prefix.shape[1]:
            grown = np.zeros((SERIES, 2 * (c + todo + 1)), dtype=np.longdouble)
            grown[:, : c + 1] = self.prefix[:, : c + 1]
            self.prefix = grown
        np.add(running, self.prefix[:, c : c + 1], out=self.prefix[:, c + 1 : c + todo + 1])
        self.chunks += todo


def catch_up(pairs: Sequence[tuple[TrailingWindow, WindowSums]]) -> None:
    """Sum the whole chunks each window has gained since its last estimate; windows at the
    same stream position (a node's channels) in one pass."""
    by_pos: dict[tuple[int, int], list[tuple[TrailingWindow, WindowSums]]] = {}
    for win, ws in pairs:
        ws.restart_if_due(win)
        nxt = ws.base + ws.chunks * CHUNK
        todo = (win.added - nxt) // CHUNK
        if todo > 0:
            by_pos.setdefault((nxt, todo), []).append((win, ws))
    for (nxt, todo), group in by_pos.items():
        raw = TrailingWindow.stacked([win for win, _ in group], nxt, nxt + todo * CHUNK)  # (3, k, m)
        s = _series(raw[0], raw[1], raw[2], np.array([ws.refs for _, ws in group]))
        running = np.cumsum(s.reshape(len(group), SERIES, todo, CHUNK).sum(axis=3).astype(np.longdouble), axis=2)
        for (_, ws), cs in zip(group, running):
            ws.extend(cs)


def _edge_plan(first: int, end: int, base: int, chunks: int) -> tuple[npt.NDArray[np.int64], ...]:
    """Per batch edge a (stream index): the prefix column it starts from, the window offset
    of the samples to add (forward, +) or take away (backward, -), their count and sign."""
    n = end - first
    a = first + lrv.batch_edges(n)
    col = np.minimum((a - base) // CHUNK, chunks)  # floor: -1 before the prefix's start
    start = base + col * CHUNK
    fwd = (col >= 0) & (start >= first)
    col = np.where(fwd, col, col + 1)
    lo = np.where(fwd, start, a)
    count = np.where(fwd, a - start, base + col * CHUNK - a)
    return col, lo - first, count, np.where(fwd, 1.0, -1.0)


_J: Final = np.arange(CHUNK)


def _prefix_at_edges(pairs: Sequence[tuple[TrailingWindow, WindowSums]]) -> npt.NDArray[np.longdouble]:
    """(k, SERIES, BATCHES + 1): the prefix sums at the batch edges of k windows at one
    stream position, caught up and sharing their chunks (base, chunks)."""
    k = len(pairs)
    win0, ws0 = pairs[0]
    first, end = win0.first_index, win0.added
    col, off, count, sign = _edge_plan(first, end, ws0.base, ws0.chunks)
    idx = np.minimum(off[:, None] + _J, end - first - 1)  # (edges, CHUNK)
    raw = TrailingWindow.stacked([win for win, _ in pairs], first, end, idx)  # (3, k, edges, CHUNK)
    e = idx.shape[0]
    s = _series(raw[0].reshape(k, -1), raw[1].reshape(k, -1), raw[2].reshape(k, -1),
                np.array([ws.refs for _, ws in pairs])).reshape(k, SERIES, e, CHUNK)  # fmt: skip
    weight = np.where(_J < count[:, None], sign[:, None], 0.0)  # (edges, CHUNK): +1, -1 or 0
    part = np.einsum("ksej,ej->kse", s, weight)
    return np.stack([ws.prefix[:, col] for _, ws in pairs]) + part


def _fits(n: int, w: npt.NDArray[np.longdouble], d: npt.NDArray[np.longdouble], t_first: npt.NDArray[np.float64],
          t_last: npt.NDArray[np.float64], refs: npt.NDArray[np.float64],
          ) -> tuple[list[SlopeFit[float]], list[SlopeFit[float]], npt.NDArray[np.float64]]:  # fmt: skip
    """The lines of P/T and of ln(P/T) of k windows of n samples from their sums over the
    window w (k, SERIES) and over its batches d (k, SERIES, BATCHES), and the lack-of-fit z
    of each (k, 2)."""
    k = w.shape[0]
    big_n = np.longdouble(n)
    lengths = lrv.batch_lengths(n).astype(np.longdouble)
    su = w[:, _U]
    ubar = su / big_n
    sxx = w[:, _U + 1] - su * ubar
    sy = w[:, _ROWS_Y]  # (k, 2)
    ybar = sy / big_n
    sxy = w[:, [y + 1 for y in _ROWS_Y]] - su[:, None] * ybar
    syy = w[:, _YY : _YY + 2] - sy * ybar
    slope = sxy / sxx[:, None]
    sse = np.maximum(syy - slope * sxy, 0.0)
    du = d[:, _U] - lengths * ubar[:, None]  # (k, BATCHES)
    dy = d[:, _ROWS_Y] - lengths * ybar[:, :, None]  # (k, 2, BATCHES): the centred series'
    resid = dy - slope[:, :, None] * du[:, None, :]
    modes = lrv.modes_of_sums(np.moveaxis(resid.astype(np.float64), 2, 0), n)
    sxx64 = np.repeat(sxx.astype(np.float64)[:, None], 2, axis=1)
    sse64, slope64 = sse.astype(np.float64), slope.astype(np.float64)
    stderr, half, n_eff, beta = spread(n, sxx64, sse64, modes)
    t_mid = np.repeat(refs[:, 0] + ubar.astype(np.float64), 2)
    rows = SlopeFit(slope64.ravel(), (refs[:, 1:3] + ybar.astype(np.float64)).ravel(), stderr.ravel(),
                    (slope64 - half).ravel(), (slope64 + half).ravel(), np.sqrt(sse64 / (n - 2.0)).ravel(),
                    np.full(2 * k, n), n_eff.ravel(), beta.ravel(), t_mid, np.repeat(t_last, 2))  # fmt: skip
    fits = split_rows(rows, n)  # (P/T, ln(P/T)) of each window in turn
    u_first = (t_first - refs[:, 0]).astype(np.longdouble)
    u_last = (t_last - refs[:, 0]).astype(np.longdouble)
    scale = np.maximum(u_last - ubar, ubar - u_first)
    z = _lack_of_fit(n, w, d, lengths, ubar, ybar, dy, scale)
    return fits[0::2], fits[1::2], z


def _lack_of_fit(n: int, w: npt.NDArray[np.longdouble], d: npt.NDArray[np.longdouble],
                 lengths: npt.NDArray[np.longdouble], ubar: npt.NDArray[np.longdouble],
                 ybar: npt.NDArray[np.longdouble], dy: npt.NDArray[np.longdouble],
                 scale: npt.NDArray[np.longdouble]) -> npt.NDArray[np.float64]:  # fmt: skip
    """`decay.lack_of_fit_rows` of both series of k windows from their sums: the Gram of
    x^0..x^4 (x = (u - ubar) / scale on [-1, 1]) and the moments, re-centred by the binomial
    theorem in extended precision, then the quadratic and quartic as the one-shot test
    solves them, and `decay.curvature_z`."""
    k = w.shape[0]
    top = _TOP + 1
    powers = np.empty((k, top), dtype=np.longdouble)  # (-ubar)^m
    powers[:, 0] = 1.0
    for m in range(1, top):
        powers[:, m] = powers[:, m - 1] * -ubar
    inv = np.empty((k, top), dtype=np.longdouble)  # scale^-j
    inv[:, 0] = 1.0
    for m in range(1, top):
        inv[:, m] = inv[:, m - 1] / scale
    shift = np.zeros((k, top, top), dtype=np.longdouble)  # sum x^j = shift[j] . (sum u^0 .. u^8)
    rows, cols = _LOWER
    shift[:, rows, cols] = _BINOM[rows, cols] * powers[:, rows - cols] * inv[:, rows]
    sums_u = np.empty((k, top), dtype=np.longdouble)
    sums_u[:, 0] = n
    sums_u[:, 1:] = w[:, _U : _U + _TOP]
    gx = np.einsum("kij,kj->ki", shift, sums_u)  # sum x^0 .. x^8
    low = shift[:, : LOF_DEGREE + 1, : LOF_DEGREE + 1]
    uy = np.stack([w[:, y : y + LOF_DEGREE + 1] for y in _ROWS_Y], axis=1)  # (k, 2, 5): sum u^j y
    moments = np.einsum("kij,krj->kir", low, uy) - gx[:, : LOF_DEGREE + 1, None] * ybar[:, None, :]
    du = np.empty((k, LOF_DEGREE + 1, lrv.BATCHES), dtype=np.longdouble)
    du[:, 0] = lengths
    du[:, 1:] = d[:, _U : _U + LOF_DEGREE]
    design_sums = np.einsum("kij,kjb->kbi", low, du)  # (k, BATCHES, 5)
    gram = gx[:, _HANKEL].astype(np.float64)
    mom = moments.astype(np.float64)  # (k, 5, 2)
    coef = np.linalg.solve(gram[:, :3, :3], mom[:, :3])
    quartic = np.linalg.solve(gram, mom)
    qq = gram[:, 2, 2] - np.einsum("ki,ki->k", gram[:, 2, :2], np.linalg.solve(gram[:, :2, :2], gram[:, :2, 2:3])[..., 0])
    return curvature_z(n, coef[:, 2], quartic, qq, design_sums.astype(np.float64),
                       np.swapaxes(dy, 1, 2).astype(np.float64))  # fmt: skip


def estimate_windows(
    pairs: Sequence[tuple[TrailingWindow, WindowSums]], limit_pa: float | None = None
) -> list[LeakEstimate | None]:  # fmt: skip
    """`estimate_leak` of each window (None below ESTIMATE_MIN_SAMPLES or one sample time); windows
    at one stream position (a node's channels) in one vectorized pass. A window alone at
    its position is refitted: the pass's fixed cost (~0.5 ms) is paid back from two
    windows on (bench/bench_windowsums.py)."""
    out: list[LeakEstimate | None] = [None] * len(pairs)
    at: dict[tuple[int, int], list[int]] = {}  # windows at one stream position
    for i, (win, _) in enumerate(pairs):
        # (an unbounded window is refitted: its sums would span ever more time, never restarting)
        if len(win) >= MIN_SAMPLES and win.window_s is not None:
            at.setdefault((win.first_index, win.added), []).append(i)
    live = [i for members in at.values() if len(members) >= MIN_GROUP for i in members]
    for i in set(range(len(pairs))) - set(live):
        out[i] = estimate_window(pairs[i][0], limit_pa)
    catch_up([pairs[i] for i in live])
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i in live:
        win, ws = pairs[i]
        groups.setdefault((win.first_index, win.added, ws.base, ws.chunks), []).append(i)
    for (first, end, _, _), members in groups.items():
        group = [pairs[i] for i in members]
        n = end - first
        pe = _prefix_at_edges(group)
        w = pe[:, :, -1] - pe[:, :, 0]
        ends = np.array([win.samples(end - 1, end)[0, 0] for win, _ in group])
        firsts = np.array([win.samples(first, first + 1)[0, 0] for win, _ in group])
        lins, logs, z = _fits(n, w, np.diff(pe, axis=2), firsts, ends, np.array([ws.refs for _, ws in group]))
        p_mean = (w[:, _P] / n).astype(np.float64)
        tk_mean = (w[:, _TK] / n).astype(np.float64)
        for j, i in enumerate(members):
            win = pairs[i][0]
            if w[j, _BAD] != 0.0 or not ends[j] > firsts[j]:
                out[i] = estimate_window(win, limit_pa)
                continue

            def local(win: TrailingWindow = win) -> LocalRate:
                t, p, tk = win.columns()
                return local_rate(t, p / tk)

            decay = decide(lins[j], exp_from_log_fit(logs[j]), float(z[j, 0]), float(z[j, 1]), float(ends[j]), local)
            out[i] = estimate_of(decay, float(firsts[j]), float(ends[j]), n, float(p_mean[j]), float(tk_mean[j]),
                                 limit_pa)  # fmt: skip
    return out


def estimate_window(win: TrailingWindow, limit_pa: float | None = None) -> LeakEstimate | None:
    """`estimate_leak` of the window's samples (None below 5 samples or one sample time):
    the exact path, for `monitor` and for what the sums do not cover."""
    if len(win) < ESTIMATE_MIN_SAMPLES:
        return None
    t, p, tk = win.columns()
    return estimate_leak(t, p, tk, limit_pa) if t[-1] > t[0] else None
