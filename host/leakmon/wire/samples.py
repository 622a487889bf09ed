"""SAMPLES frames by the array: layouts checked, rows gathered, and the table form.

The stream core reads every SAMPLES header of a batch at once: a frame is well
formed when its header is whole, its rows exactly fill the payload, it has at least
one row, its period is at least 1 us and its channel list is possible (messages.samples_layout_error, the
rule the one-frame parser applies too). Frames are then grouped by layout (channel
list and row count), so that all rows of one layout are compensated in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from leakmon import wire
from leakmon.wire.messages import samples_layout_error
from leakmon.wire.scan import u16, u32

CHANNELS_AT = wire.HEADER_SIZE + wire.SAMPLES_HEADER_SIZE  # frame offset of the channel list
T0_AT = wire.HEADER_SIZE + wire.SAMPLES_OFF_T0
PERIOD_AT = wire.HEADER_SIZE + wire.SAMPLES_OFF_PERIOD
ROWS_AT = wire.HEADER_SIZE + wire.SAMPLES_OFF_ROWS
NCH_AT = wire.HEADER_SIZE + wire.SAMPLES_OFF_NCH

Channels = tuple[tuple[int, int], ...]  # (channel, raw size) in row order


@dataclass(frozen=True, slots=True)
class Layout:
    """Frames (indices into the batch's SAMPLES frames) that share a channel list and row count."""

    idx: np.ndarray
    channels: Channels
    rows: int
    block: np.ndarray | None = None  # (frames, size) view when the frames lie back to back

    @property
    def row_size(self) -> int:
        return sum(size for _, size in self.channels)

    def raw(self, a: np.ndarray, s: np.ndarray) -> np.ndarray:
        """(frames * rows, row_size) raw bytes of these frames, in order."""
        n, size = len(self.idx), self.row_size
        first = CHANNELS_AT + 2 * len(self.channels)
        if self.block is not None:
            return self.block[:, first : first + self.rows * size].reshape(n * self.rows, size)
        at = s[self.idx] + CHANNELS_AT + 2 * len(self.channels)
        return sliding_window_view(a, self.rows * size)[at].reshape(n * self.rows, size)


def uniform(a: np.ndarray, s: np.ndarray, plen: np.ndarray, contiguous: bool = False) -> Layout | None:
    """The layout of SAMPLES frames that lie back to back, all of one size and one layout,
    and all well formed (a node's steady stream); None if they are not, or not all so.
    contiguous: the framing already found them back to back and of one size."""
    m = len(s)
    p0, size = int(s[0]), int(plen[0]) + wire.OVERHEAD
    if size < CHANNELS_AT + wire.CRC_SIZE:
        return None
    if not contiguous and (int(s[-1]) - p0 != (m - 1) * size or (m > 1 and not (plen == plen[0]).all())):
        return None
    block = a[p0 : p0 + m * size].reshape(m, size)
    head = a[p0 + ROWS_AT : p0 + CHANNELS_AT].tolist()
    n_ch, rows = head[2], head[0] | head[1] << 8
    first = CHANNELS_AT + 2 * n_ch
    if first > size or (m > 1 and not (block[:, ROWS_AT:first] == block[0, ROWS_AT:first]).all()):
        return None
    lay = a[p0 + CHANNELS_AT : p0 + first].tolist()
    chans = tuple(zip(lay[0::2], lay[1::2]))
    if rows < 1 or first + rows * sum(lay[1::2]) + wire.CRC_SIZE != size or samples_layout_error(chans):
        return None
    period = np.ndarray((m,), "<u4", buffer=a, offset=p0 + PERIOD_AT, strides=(size,))
    if not period.all():
        return None
    return Layout(np.arange(m), chans, rows, block)


def layouts(a: np.ndarray, s: np.ndarray, plen: np.ndarray,
            contiguous: bool = False) -> tuple[np.ndarray, list[Layout]]:
    """Which SAMPLES frames at s are well formed, and their layouts (over the well-formed ones)."""
    lay = uniform(a, s, plen, contiguous)
    if lay is not None:
        return np.ones(len(s), bool), [lay]
    ok = plen >= wire.SAMPLES_HEADER_SIZE
    n_ch = np.zeros(len(s), np.int64)
    n_rows = np.zeros(len(s), np.int64)
    if ok.all():
        n_ch[:] = a[s + NCH_AT]
        n_rows[:] = u16(a, s + ROWS_AT)
        ok &= (u32(a, s + PERIOD_AT) >= 1) & (n_rows >= 1)
    else:
        n_ch[ok] = a[s[ok] + NCH_AT]
        n_rows[ok] = u16(a, s[ok] + ROWS_AT)
        ok[ok] = (u32(a, s[ok] + PERIOD_AT) >= 1) & (n_rows[ok] >= 1)
    ok &= plen >= wire.SAMPLES_HEADER_SIZE + 2 * n_ch
    row_size = np.zeros(len(s), np.int64)
    counts = np.bincount(n_ch[ok], minlength=1)
    for c in np.flatnonzero(counts).tolist():
        fi = np.flatnonzero(ok & (n_ch == c)) if counts[c] != len(s) else np.arange(len(s))
        for k in range(c):
            row_size[fi] += a[s[fi] + CHANNELS_AT + 2 * k + 1]
    ok &= plen - wire.SAMPLES_HEADER_SIZE - 2 * n_ch == n_rows * row_size
    groups: list[Layout] = []
    for c in np.flatnonzero(np.bincount(n_ch[ok], minlength=1)).tolist():
        fi = np.flatnonzero(ok & (n_ch == c))
        key = np.concatenate([sliding_window_view(a, 2 * c)[s[fi] + CHANNELS_AT] if c else
                              np.empty((len(fi), 0), np.uint8),
                              n_rows[fi].astype("<u2").view(np.uint8).reshape(-1, 2)], axis=1)
        if (key == key[0]).all():
            uniq, inv = key[:1], np.zeros(len(fi), np.int64)
        else:
            uniq, inv = np.unique(key, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
        for g, k in enumerate(uniq):
            chans = tuple((int(k[2 * i]), int(k[2 * i + 1])) for i in range(c))
            idx = fi[inv == g] if len(uniq) > 1 else fi
            if samples_layout_error(chans):
                ok[idx] = False
            else:
                groups.append(Layout(idx, chans, int(k[-2]) | int(k[-1]) << 8))
    return ok, groups


@dataclass(frozen=True, slots=True)
class SampleTable:
    """Compensated samples, one entry per sample per channel, in the order the node sent them."""

    t_s: np.ndarray
    channel: np.ndarray  # uint8
    pressure_pa: np.ndarray
    temperature_k: np.ndarray
    seq: np.ndarray  # uint16, of the SAMPLES frame

    def __len__(self) -> int:
        return len(self.t_s)

    @classmethod
    def empty(cls) -> "SampleTable":
        f = np.empty(0, np.float64)
        return cls(f, np.empty(0, np.uint8), f, f, np.empty(0, np.uint16))

    @classmethod
    def concat(cls, tables: list["SampleTable"]) -> "SampleTable":
        tables = [t for t in tables if len(t)]
        if len(tables) == 1:
            return tables[0]
        if not tables:
            return cls.empty()
        return cls(*(np.concatenate([getattr(t, k) for t in tables]) for k in cls.__slots__))

    def by_channel(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per channel: (t_s, pressure_pa, temperature_k), in the order the node sent them."""
        return {int(ch): (self.t_s[sel], self.pressure_pa[sel], self.temperature_k[sel])
                for ch in np.unique(self.channel) for sel in [self.channel == ch]}


@dataclass(frozen=True, slots=True)
class Compensated:
    """One layout's results: frames (indices into the run), and per channel (frames, rows) arrays."""

    idx: np.ndarray
    rows: int
    channels: list[tuple[int, np.ndarray, np.ndarray]]  # (channel, pressure_pa, temperature_k)
    t_s: np.ndarray  # (frames, rows) device time


def assemble(groups: list[Compensated], seq: np.ndarray) -> SampleTable:
    """One table in stream order (frame, then channel, then row) from per-layout results."""
    per_frame = np.zeros(len(seq), np.int64)
    for g in groups:
        per_frame[g.idx] = g.rows * len(g.channels)
    if len(groups) == 1 and len(groups[0].idx) == len(seq):  # one layout: already in order
        g = groups[0]
        n_ch, rows, nf = len(g.channels), g.rows, len(g.idx)
        if not n_ch or not rows:
            return SampleTable.empty()
        return SampleTable(np.broadcast_to(g.t_s[:, None, :], (nf, n_ch, rows)).reshape(-1),
                           np.tile(np.repeat(np.array([c for c, _, _ in g.channels], np.uint8), rows), nf),
                           np.stack([p for _, p, _ in g.channels], axis=1).reshape(-1),
                           np.stack([t for _, _, t in g.channels], axis=1).reshape(-1),
                           np.repeat(seq, rows * n_ch))
    total = int(per_frame.sum())
    offset = np.concatenate([[0], np.cumsum(per_frame)[:-1]])
    out = SampleTable(np.empty(total), np.empty(total, np.uint8), np.empty(total), np.empty(total),
                      np.empty(total, np.uint16))
    for g in groups:
        n_ch, rows, nf = len(g.channels), g.rows, len(g.idx)
        if not n_ch or not rows:
            continue
        pos = (offset[g.idx][:, None, None] + np.arange(n_ch)[None, :, None] * rows
               + np.arange(rows)[None, None, :]).reshape(-1)
        out.t_s[pos] = np.broadcast_to(g.t_s[:, None, :], (nf, n_ch, rows)).reshape(-1)
        out.channel[pos] = np.tile(np.repeat(np.array([c for c, _, _ in g.channels], np.uint8), rows), nf)
        out.pressure_pa[pos] = np.stack([p for _, p, _ in g.channels], axis=1).reshape(-1)
        out.temperature_k[pos] = np.stack([t for _, _, t in g.channels], axis=1).reshape(-1)
        out.seq[pos] = np.repeat(seq[g.idx], rows * n_ch)
    return out
