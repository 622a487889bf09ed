"""Frame decoder: bytes in (a live read of any size, or a recording chunk), frames out, no I/O.

It keeps the bytes of a frame that has begun and waits for the rest, and leaves the
choice of frames to leakmon.wire.scan, which resynchronizes after garbage exactly as
PROTOCOL.md says: a frame whose CRC fails, or whose version is unknown, is given up
one byte past its sync, so an intact frame starting inside its bytes is still found.
The stream core (leakmon.wire.stream) uses ``take``, which returns the frames as
arrays over the buffer; ``feed`` returns Frame objects, for tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leakmon import wire
from leakmon.wire.scan import (
    RUN_CHECK_MAX,
    DecoderStats,
    Expected,
    expected_run,
    find_frames,
    waits,
)

__all__ = ["Batch", "DecoderStats", "Expected", "Frame", "FrameDecoder"]


@dataclass(frozen=True, slots=True)
class Frame:
    msg_type: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Frames found in one feed: offsets into buf (a, the same bytes as numpy)."""

    buf: bytes
    a: np.ndarray
    start: np.ndarray
    plen: np.ndarray
    uniform: bool = False  # back to back, of one size and one type (see scan.Frames)

    def __len__(self) -> int:
        return len(self.start)

    def frame(self, k: int) -> Frame:
        s, n = int(self.start[k]), int(self.plen[k])
        buf = self.buf
        return Frame(buf[s + wire.OFF_TYPE], buf[s + wire.OFF_SEQ] | buf[s + wire.OFF_SEQ + 1] << 8,
                     buf[s + wire.HEADER_SIZE : s + wire.HEADER_SIZE + n])


class FrameDecoder:
    """feed(bytes) -> frames with good CRCs; counters in .stats."""

    def __init__(self, max_payload: int = wire.MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.stats = DecoderStats()
        self._pending = b""
        self._need = 0  # bytes the pending frame needs before anything can be decided

    _EMPTY = np.empty(0, np.int64)

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._pending)

    def take(self, data: bytes | bytearray | memoryview, final: bool = False) -> Batch:
        """The frames completed by data (final: no more data follows, give up a partial frame)."""
        self.stats.bytes_in += len(data)
        buf = self._pending + bytes(data) if self._pending else bytes(data)
        if len(buf) < self._need and not final:  # a frame has begun and is still short: nothing to decide
            self._pending = buf
            return Batch(buf, np.frombuffer(buf, np.uint8), self._EMPTY, self._EMPTY)
        found = find_frames(buf, self.stats, final, self.max_payload)
        self._keep(buf[found.consumed :])
        self.stats.frames += len(found.start)
        a = found.a if found.a is not None else np.frombuffer(buf, np.uint8)
        return Batch(buf, a, found.start, found.plen, found.uniform)

    def take_expected(self, data: bytes | bytearray | memoryview, expect: Expected) -> np.ndarray | None:
        """take(data) when it completes only frames of the expected kind, back to back from the
        first byte and with nothing else behind them but the start of a frame: those frames
        as a (frames, size) uint8 view, with the same counters and pending bytes take() leaves.
        None (and nothing changed) otherwise: then call take(data).

        A node's steady stream is nothing but such frames, and a live read of 4 KB holds
        about 48 of them: checking them against what is already known is the live path's
        shortcut past the general search, which take() makes for every other read."""
        buf = self._pending + bytes(data) if self._pending else bytes(data)
        size = expect.size
        m, n = len(buf) // size, len(buf)
        if not 0 < m <= RUN_CHECK_MAX or (m * size < n and not waits(buf, m * size, self.max_payload)):
            return None
        frames = expected_run(np.frombuffer(buf, np.uint8), m, expect)
        if frames is None:
            return None
        self.stats.bytes_in += len(data)
        self.stats.frames += m
        self._keep(buf[m * size :])
        return frames

    def _keep(self, rest: bytes) -> None:
        """Hold rest until more data: it starts a frame (or is a first sync byte), which
        decides nothing until its header, then its whole length, has arrived."""
        self._pending = rest
        if len(rest) >= wire.HEADER_SIZE:
            self._need = (rest[wire.OFF_LEN] | rest[wire.OFF_LEN + 1] << 8) + wire.OVERHEAD
        else:
            self._need = min(len(rest) + 1, 2) if len(rest) <= 1 else wire.HEADER_SIZE

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        b = self.take(data)
        return [b.frame(k) for k in range(len(b))]

    def drop_pending(self) -> None:
        """Forget a partial frame (the link broke inside it): its bytes count as skipped."""
        self.stats.bytes_skipped += len(self._pending)
        self._pending = b""
        self._need = 0

    def finish(self) -> list[Frame]:
        """At end of input: give up on an incomplete frame and rescan what is behind it.

        A corrupted length field makes the decoder wait for bytes that belong to the
        next frames; live, the CRC then fails and they are found, but at the end of a
        recording nothing more comes, so they are recovered here.
        """
        b = self.take(b"", final=True)
        return [b.frame(k) for k in range(len(b))]
