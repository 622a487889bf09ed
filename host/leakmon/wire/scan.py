"""Finding frames in a buffer, vectorized: the framing under the one stream core.

PROTOCOL.md's receiver ("What a receiver does") takes, from the end of the last
frame, the first sync whose length is possible and whose CRC is good and version
known; every other sync it examines is given up one byte past itself and counted.
``find_frames`` makes that choice for a whole buffer at once, with the very same
frames and counters as the byte-by-byte reference (tests/property/reference_receiver.py):

* a clean stretch, frames back to back as a node sends them, is taken run by run of
  equal-length frames, viewed as one (frames, length) array: their headers and CRCs
  are checked column-wise, so a live 4 KB read costs a few dozen numpy calls;
* from the first place where the stream is not clean, every sync candidate is
  gathered, the CRCs of all complete ones are checked, and the greedy chain is
  resolved (``_find_general``).

CRCs are computed by table, one lookup per byte with a table per position from the
end (``crc16_rows``), in slices of at most ``CRC_SLICE`` bytes: memory stays O(input)
whatever the bytes, even when every byte pair is a sync claiming the longest frame.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from leakmon import wire

CRC_SLICE = 1 << 16  # bytes of frame data per CRC batch: bounds the temporaries (6 bytes each)
RUN_CHECK_MAX = 4096  # frame positions a clean run checks at once (keeps mixed streams linear)
SHORT_RUNS = 4  # runs shorter than MIN_RUN a call tolerates before leaving the clean path
MIN_RUN = 8
_DATA_MAX = wire.MAX_PAYLOAD + wire.HEADER_SIZE - wire.OFF_VERSION  # CRC'd bytes of the longest frame


@dataclass(slots=True)
class DecoderStats:
    """What the framing saw: every byte in is skipped or in a frame (bytes_skipped + framed)."""

    bytes_in: int = 0
    bytes_skipped: int = 0
    frames: int = 0
    crc_errors: int = 0
    oversize: int = 0
    unknown_version: int = 0


@dataclass(slots=True)
class Frames:
    """Version-1 frames with good CRCs found in a buffer, and how much of it was decided."""

    start: np.ndarray  # int64 offsets of the frames' sync bytes
    plen: np.ndarray  # int64 payload lengths
    consumed: int  # bytes of the buffer decided (the rest waits for more data)
    a: np.ndarray | None = None  # the buffer as numpy
    uniform: bool = False  # the frames lie back to back, of one size and type (one clean run)


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


def column(a: np.ndarray, dtype: str, offset: int, stride: int, n: int) -> np.ndarray:
    """n values of dtype at a[offset], a[offset+stride]...: one field of frames that lie back to back."""
    return np.ndarray((n,), dtype, buffer=a, offset=offset, strides=(stride,))


def _crc_tables() -> tuple[np.ndarray, np.ndarray]:
    """CRC-16/CCITT-FALSE is linear: the register after data d is I[len d] XOR, over the
    bytes, T[k][byte] with k the number of bytes after it. T[k*256+b]: register (from 0)
    after byte b then k zero bytes; I[k]: register after k zero bytes from 0xFFFF."""
    t8 = np.array([crc_hqx(bytes((b,)), 0) for b in range(256)], np.uint32)
    t = np.empty((_DATA_MAX, 256), np.uint16)
    v = t8.copy()
    init = np.empty(_DATA_MAX + 1, np.uint16)
    r = np.array([0xFFFF], np.uint32)
    for k in range(_DATA_MAX):
        t[k] = v
        init[k] = r[0]
        v = ((v << 8) & 0xFFFF) ^ t8[v >> 8]
        r = ((r << 8) & 0xFFFF) ^ t8[r >> 8]
    init[_DATA_MAX] = r[0]
    return t.reshape(-1), init


_TABLES: tuple[np.ndarray, np.ndarray] | None = None


def crc16_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of each row of a (frames, n) uint8 array, as wire.crc16 computes it."""
    global _TABLES
    if _TABLES is None:
        _TABLES = _crc_tables()
    table, init = _TABLES
    m, n = rows.shape
    if n == 0:
        return np.full(m, 0xFFFF, np.uint16)
    base = _BASES.get(n)
    if base is None:
        base = _BASES[n] = ((n - 1 - np.arange(n)) * 256).astype(np.int32)
    step = max(1, CRC_SLICE // n)
    if m <= step:
        out: np.ndarray = np.bitwise_xor.reduce(table.take(np.add(rows, base, dtype=np.int32)), axis=1)
        out ^= init[n]
        return out
    out = np.empty(m, np.uint16)
    for k in range(0, m, step):
        idx = np.add(rows[k : k + step], base, dtype=np.int32)
        out[k : k + step] = np.bitwise_xor.reduce(table.take(idx), axis=1)
    out ^= init[n]
    return out


_BASES: dict[int, np.ndarray] = {}  # per data length: the table row of each byte, times 256


_VECTOR_MIN = 8  # candidates of one length below which binascii per frame is faster


def crc16_many(a: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of a[start:start+length] for each pair, in O(len(a)) memory:
    candidates of one length together, CRC_SLICE bytes at a time."""
    out = np.empty(len(start), np.int64)
    if not len(start):
        return out
    lengths, inv, counts = np.unique(length, return_inverse=True, return_counts=True)
    mv = memoryview(a.data)
    for g, (n, count) in enumerate(zip(lengths.tolist(), counts.tolist())):
        idx = np.flatnonzero(inv == g) if len(lengths) > 1 else np.arange(len(start))
        if count < _VECTOR_MIN:
            out[idx] = [crc_hqx(mv[s : s + n], 0xFFFF) for s in start[idx].tolist()]
            continue
        view = sliding_window_view(a, n) if n else np.empty((len(a), 0), np.uint8)
        step = max(1, CRC_SLICE // max(n, 1))
        for k in range(0, count, step):
            part = idx[k : k + step]
            out[part] = crc16_rows(view[start[part]])
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


def _syncs(a: np.ndarray, itype: type[np.integer]) -> np.ndarray:
    """Offsets of every A5 4C pair, as itype, found a block at a time (no int64 array of them all)."""
    if len(a) < 2:
        return np.empty(0, itype)
    pair = a[:-1] == wire.SYNC0
    pair &= a[1:] == wire.SYNC1
    block = 1 << 20
    parts: list[np.ndarray] = [np.flatnonzero(pair[k : k + block]).astype(itype) + k
                               for k in range(0, len(pair), block)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _find_general(a: np.ndarray, stats: DecoderStats, final: bool, max_payload: int) -> Frames:
    """Every candidate at once: the reference receiver's choice, for any bytes."""
    n = len(a)
    # Offsets fit in int32 for any buffer the stream feeds; int32 halves the per-candidate
    # arrays when every other byte is a sync (memory stays a small multiple of the input).
    itype: type[np.integer] = np.int32 if n < 1 << 30 else np.int64
    cand = _syncs(a, itype)
    hdr = cand <= n - wire.HEADER_SIZE
    plen: np.ndarray = np.zeros(len(cand), itype)
    plen[hdr] = unaligned(a, "<u2")[cand[hdr] + wire.OFF_LEN]
    oversize = hdr & (plen > max_payload)
    end = cand + plen
    end += wire.OVERHEAD
    complete = hdr & ~oversize & (end <= n)
    ci = np.flatnonzero(complete)
    crc_ok = np.zeros(len(cand), bool)
    if ci.size:
        crc_ok[ci] = crc16_many(a, cand[ci] + wire.OFF_VERSION, plen[ci] + wire.HEADER_SIZE - wire.OFF_VERSION) \
            == u16(a, end[ci] - wire.CRC_SIZE)
    known = np.zeros(len(cand), bool)
    known[crc_ok] = a[cand[crc_ok] + wire.OFF_VERSION] == wire.VERSION
    ok = crc_ok & known  # intact frames of this version: the only ones taken
    chained = ok  # what the chain steps over: a frame that fails is given up one byte past its sync
    vi = np.flatnonzero(chained)
    ki = vi[_chain(cand[vi], end[vi])]
    ki = ki[ok[ki]]
    ks, ke = cand[ki].astype(np.int64), end[ki].astype(np.int64)
    # Candidates strictly inside a taken frame were never looked at: mark them by a running sum.
    inside = np.zeros(len(cand) + 1, np.int8)
    np.add.at(inside, np.searchsorted(cand, ks, "right"), 1)
    np.add.at(inside, np.searchsorted(cand, ke, "left"), -1)
    examined = np.cumsum(inside[:-1], dtype=np.int8) == 0
    cut = n
    if not final:
        undecided = np.flatnonzero(examined & ~oversize & ~complete)
        if undecided.size:
            cut = int(cand[undecided[0]])
        elif n and a[-1] == wire.SYNC0 and not (ks.size and ke[-1] == n):
            cut = n - 1  # a first sync byte whose partner may come next
    counted = examined & (cand < cut)
    stats.oversize += int(np.count_nonzero(counted & oversize))
    stats.crc_errors += int(np.count_nonzero(counted & complete & ~crc_ok))
    stats.unknown_version += int(np.count_nonzero(counted & crc_ok & ~known))
    take = ks < cut
    ks, ke, kp = ks[take], ke[take], plen[ki][take].astype(np.int64)
    stats.bytes_skipped += cut - int(np.sum(ke - ks))
    return Frames(ks, kp, cut)


_NOT_SEQ = np.uint64(~(0xFFFF << (8 * wire.OFF_SEQ)) & 0xFFFF_FFFF_FFFF_FFFF)  # a header without its seq


def _clean_runs(buf: bytes, a: np.ndarray, p: int, max_payload: int) -> tuple[list[tuple[int, int, int]], int]:
    """Frames back to back from p, all intact and of this version: [(start, length, count)]
    and where they end. Stops at the first frame that is not, or at a partial one."""
    n = len(buf)
    runs: list[tuple[int, int, int]] = []
    short = 0
    while n - p >= wire.HEADER_SIZE and buf[p] == wire.SYNC0 and buf[p + 1] == wire.SYNC1:
        plen = buf[p + wire.OFF_LEN] | buf[p + wire.OFF_LEN + 1] << 8
        size = plen + wire.OVERHEAD
        k = min((n - p) // size, RUN_CHECK_MAX)
        if plen > max_payload or k == 0:
            break
        if buf[p + wire.OFF_VERSION] != wire.VERSION:
            break
        block = a[p : p + k * size].reshape(k, size)
        # Every frame here must repeat frame 0's sync, version, type and length.
        head = column(a, "<u8", p, size, k) & _NOT_SEQ  # sync, version, type and length as one word
        same = head == head[0]
        m = k if same.all() else int(np.argmin(same))
        stored = column(a, "<u2", p + size - wire.CRC_SIZE, size, m)
        good = crc16_rows(block[:m, wire.OFF_VERSION : size - wire.CRC_SIZE]) == stored
        if not good.all():
            m = int(np.argmin(good))
        if m == 0:
            break
        runs.append((p, size, m))
        p += m * size
        if m < MIN_RUN and p < n:
            short += 1
            if short > SHORT_RUNS:
                break
    return runs, p


@dataclass(frozen=True, slots=True)
class Expected:
    """Frames a caller expects, back to back (a node's steady stream of SAMPLES): their
    size, and the first bytes every one must repeat where mask is 0xFF (sync, version,
    type, length, and whatever the caller knows stays constant)."""

    size: int
    prefix: np.ndarray  # uint8, prefix & mask
    mask: np.ndarray  # uint8, 0xFF where the byte must match, 0 where it varies


def expected_run(a: np.ndarray, m: int, expect: Expected) -> np.ndarray | None:
    """The m frames a begins with, as a (m, size) view, if they are of the expected kind,
    back to back and each intact: the clean path's finding (_clean_runs), with one masked
    comparison in place of its loop of header checks. None if any is not."""
    size = expect.size
    block = a[: m * size].reshape(m, size)
    # One masked copy of the headers, compared as bytes (cheaper than numpy's == and all()).
    if (block[:, : len(expect.prefix)] & expect.mask).tobytes() != expect.prefix.tobytes() * m:
        return None
    stored = block[:, size - wire.CRC_SIZE :].view("<u2")[:, 0]
    if not (crc16_rows(block[:, wire.OFF_VERSION : size - wire.CRC_SIZE]) == stored).all():
        return None
    return block


def waits(buf: bytes, p: int, max_payload: int) -> bool:
    """buf[p:] is the beginning of a frame that more bytes may complete."""
    rest = len(buf) - p
    if buf[p] != wire.SYNC0:
        return False
    if rest == 1:
        return True
    if buf[p + 1] != wire.SYNC1:
        return False
    if rest < wire.HEADER_SIZE:
        return True
    plen = buf[p + wire.OFF_LEN] | buf[p + wire.OFF_LEN + 1] << 8
    return plen <= max_payload and plen + wire.OVERHEAD > rest


def find_frames(buf: bytes, stats: DecoderStats, final: bool, max_payload: int = wire.MAX_PAYLOAD) -> Frames:
    """The frames the reference receiver takes from buf, and its counters; final = no more data follows."""
    a = np.frombuffer(buf, np.uint8)
    n = len(buf)
    first = buf.find(wire.SYNC)
    if first < 0:  # no sync at all: every byte is skipped, but a first sync byte at the end may pair up
        cut = n - 1 if n and not final and buf[-1] == wire.SYNC0 else n
        stats.bytes_skipped += cut
        return Frames(np.empty(0, np.int64), np.empty(0, np.int64), cut, a)
    runs, p = _clean_runs(buf, a, first, max_payload)
    if not runs:
        found = _find_general(a, stats, final, max_payload)
        found.a = a
        return found
    stats.bytes_skipped += first
    starts = [r[0] + r[1] * np.arange(r[2], dtype=np.int64) for r in runs]
    plens = [np.full(r[2], r[1] - wire.OVERHEAD, np.int64) for r in runs]
    if p == n or (not final and waits(buf, p, max_payload)):
        consumed = p  # nothing left, or a frame that has begun and waits for the rest
        if len(runs) == 1:
            return Frames(starts[0], plens[0], consumed, a, True)
    else:
        tail = _find_general(a[p:], stats, final, max_payload)
        starts.append(tail.start + p)
        plens.append(tail.plen)
        consumed = p + tail.consumed
    return Frames(np.concatenate(starts) if len(starts) > 1 else starts[0],
                  np.concatenate(plens) if len(plens) > 1 else plens[0], consumed, a)
