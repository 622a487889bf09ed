"""Finding frames in a whole buffer at once: the vectorized half of FrameDecoder.

Sync candidates come from one numpy comparison, headers are gathered, and CRCs are
checked for many frames together. Frames are then chosen exactly as FrameDecoder
chooses them: the first intact frame at or after the end of the last one, so a bad
CRC, a false sync or a torn frame resolves identically, with identical counters.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from leakmon import wire
from leakmon.wire.framing import DecoderStats


@dataclass(slots=True)
class Frames:
    """Frames found in a buffer: starts, payload lengths, and what was left undecided."""

    start: np.ndarray
    plen: np.ndarray
    consumed: int  # bytes of the buffer decided (the rest waits for more data)


def unaligned(a: np.ndarray, dtype: str) -> np.ndarray:
    """a read as dtype starting at every byte: element i is the value at a[i:i+size]."""
    dt = np.dtype(dtype)
    if len(a) < dt.itemsize:
        return np.empty(0, dt)
    return np.ndarray((len(a) - dt.itemsize + 1,), dt, buffer=a, strides=(1,))


def u16(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    out: np.ndarray = unaligned(a, "<u2")[i].astype(np.int64)
    return out


def u32(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    out: np.ndarray = unaligned(a, "<u4")[i].astype(np.int64)
    return out


def _crc16_table16() -> np.ndarray:
    """CRC-16/CCITT-FALSE register after clocking each 16-bit value through 16 zero bits."""
    t8 = np.array([crc_hqx(bytes((i >> 8, i & 0xFF)), 0) for i in range(256)], np.uint16)  # byte table
    v = np.arange(65536, dtype=np.uint32)
    for _ in range(2):
        v = ((v << 8) & 0xFFFF) ^ t8[(v >> 8) & 0xFF]
    return v.astype(np.uint16)


_T16: np.ndarray | None = None
_VECTOR_MIN = 32  # frames of one length below which binascii per frame is faster


def crc16_many(a: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of a[start:start+length] for each pair, as wire.crc16 computes it.

    Frames of one length are done together, two bytes per step through a 64 K-entry
    table: the CRC register is 16 bits wide, so after two bytes it is a table lookup
    of (register XOR the two bytes). Rare lengths go through binascii.crc_hqx.
    """
    global _T16
    if _T16 is None:
        _T16 = _crc16_table16()
    out = np.empty(len(start), np.int64)
    lengths, inv, counts = np.unique(length, return_inverse=True, return_counts=True)
    mv = memoryview(a.data)
    for g, (n, count) in enumerate(zip(lengths.tolist(), counts.tolist())):
        idx = np.flatnonzero(inv == g)
        if count < _VECTOR_MIN or n < 2:
            out[idx] = [crc_hqx(mv[s : s + n], 0xFFFF) for s in start[idx].tolist()]
            continue
        rows = sliding_window_view(a, n)[start[idx]]
        words = np.ascontiguousarray(rows[:, : n & ~1]).view(">u2").astype(np.uint16).T.copy()
        crc = np.full(count, 0xFFFF, np.uint16)
        for w in words:
            crc = _T16[crc ^ w]
        if n & 1:
            out[idx] = [crc_hqx(rows[k, -1:].tobytes(), c) for k, c in enumerate(crc.tolist())]
        else:
            out[idx] = crc
    return out


def _chain(vs: np.ndarray, ve: np.ndarray) -> np.ndarray:
    """Keep mask of the greedy chain: each kept frame is the first intact one at or after the last's end."""
    keep = np.ones(len(vs), bool)
    over = np.flatnonzero(vs[1:] < ve[:-1])
    if over.size == 0:
        return keep
    first = int(over[0]) + 1
    cur = int(ve[first - 1])
    for k, (s, e) in enumerate(zip(vs[first:].tolist(), ve[first:].tolist()), start=first):
        if s >= cur:
            cur = e
        else:
            keep[k] = False
    return keep


def find_frames(a: np.ndarray, stats: DecoderStats, final: bool, max_payload: int = wire.MAX_PAYLOAD) -> Frames:
    """The frames FrameDecoder would take from a, and its counters; final = no more data follows."""
    n = len(a)
    cand = np.flatnonzero((a[:-1] == wire.SYNC0) & (a[1:] == wire.SYNC1)) if n > 1 else np.empty(0, np.int64)
    hdr = cand + wire.HEADER_SIZE <= n
    plen = np.zeros(len(cand), np.int64)
    plen[hdr] = u16(a, cand[hdr] + 6)
    oversize = hdr & (plen > max_payload)
    end = cand + wire.OVERHEAD + plen
    complete = hdr & ~oversize & (end <= n)
    ci = np.flatnonzero(complete)
    crc_ok = np.zeros(len(cand), bool)
    if ci.size:
        crc_ok[ci] = crc16_many(a, cand[ci] + 2, plen[ci] + wire.HEADER_SIZE - 2) == u16(a, end[ci] - 2)
    vi = np.flatnonzero(crc_ok)
    ki = vi[_chain(cand[vi], end[vi])]
    ks, ke = cand[ki], end[ki]
    j = np.searchsorted(ks, cand, "right") - 1
    inside = (j >= 0) & (cand < ke[np.maximum(j, 0)]) & (cand != ks[np.maximum(j, 0)]) if ks.size else np.zeros(len(cand), bool)
    examined = ~inside
    cut = n
    if not final:
        undecided = np.flatnonzero(examined & ~oversize & ~complete)
        if undecided.size:
            cut = int(cand[undecided[0]])
        elif n and a[-1] == wire.SYNC0 and not (ks.size and ke[-1] == n):
            cut = n - 1  # a first sync byte whose partner may come next
    before = cand < cut
    stats.oversize += int(np.count_nonzero(examined & oversize & before))
    stats.crc_errors += int(np.count_nonzero(examined & complete & ~crc_ok & before))
    take = ks < cut
    ks, ke, kp = ks[take], ke[take], plen[ki][take]
    stats.bytes_skipped += cut - int(np.sum(ke - ks))
    return Frames(ks, kp, cut)
