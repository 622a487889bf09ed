"""Stored frames back into samples: the rows of fleet/history.py through the one stream
core (wire.stream.NodeStream), so a node's time range read from the database gives the
same series, sample for sample, as a recording of the same frames.

The frames are the node's own bytes (the gateway keeps each whole, CRC checked), fed in
(boot, seq) order, the order the node sent them: a reboot, a lost frame or a gap reads as
it does in a recording. Two things only the database knows are kept beside the stream:
- the frames the stream core would count lost only because the range starts inside a
  boot (its handshake is taken from before the range): not lost, and not counted;
- how the node's clock stands against the gateway's (wall minus device time, the least
  over the frames: receipt only ever comes after sampling), to put several nodes of a
  site on one time axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from leakmon import wire
from leakmon.fleet.history import BATCH_ROWS, FrameRow
from leakmon.wire.stream import NodeStream, SampleTable


def wire_seq(frame: bytes) -> int:
    return frame[wire.OFF_SEQ] | (frame[wire.OFF_SEQ + 1] << 8)


class RowDecoder:
    """Decodes rows batch by batch; after tables() is exhausted its counters are final."""

    def __init__(self, stream: NodeStream | None = None, batch_frames: int = BATCH_ROWS) -> None:
        self.stream = stream if stream is not None else NodeStream()
        self.batch_frames = batch_frames
        self.rows = 0  # in the range (not the handshakes added before it)
        self.first_t_us: int | None = None
        self.last_t_us: int | None = None
        self.range_skip_frames = 0
        self.wall_minus_device_s = math.inf
        self._prev: FrameRow | None = None

    @property
    def lost_frames(self) -> int:
        """Frames the node sent within the range and the store never got."""
        return self.stream.stats.lost_frames - self.range_skip_frames

    def tables(self, rows: Iterable[FrameRow]) -> Iterator[SampleTable]:
        buf: list[bytes] = []
        t_of_seq: dict[int, int] = {}
        for r in rows:
            if r.in_range:
                self.rows += 1
                self.first_t_us = r.t_us if self.first_t_us is None else self.first_t_us
                self.last_t_us = r.t_us
                prev = self._prev
                if prev is not None and not prev.in_range and prev.boot == r.boot:
                    # the jump from the handshake to the range's first frame, as the core counts it
                    self.range_skip_frames += (wire_seq(r.frame) - wire_seq(prev.frame) - 1) & 0xFFFF
                t_of_seq[wire_seq(r.frame)] = r.t_us
            self._prev = r
            buf.append(r.frame)
            if len(buf) >= self.batch_frames:
                yield self._feed(buf, t_of_seq)
                buf, t_of_seq = [], {}
        yield self._feed(buf, t_of_seq)
        yield self.stream.finish_table()[0]

    def _feed(self, buf: list[bytes], t_of_seq: dict[int, int]) -> SampleTable:
        table = self.stream.feed_table(b"".join(buf))[0]
        if len(table) and t_of_seq:
            self._clock(table, t_of_seq)
        return table

    def _clock(self, table: SampleTable, t_of_seq: dict[int, int]) -> None:
        """wall - device time at each frame's last sample; the least is the best estimate."""
        seq = table.seq[::-1]
        u, idx = np.unique(seq, return_index=True)
        t_dev_s = table.t_s[::-1][idx]
        t_wall_us = np.array([t_of_seq.get(int(s), -1) for s in u], np.int64)
        ok = t_wall_us >= 0
        if ok.any():
            self.wall_minus_device_s = min(self.wall_minus_device_s,
                                           float(np.min(t_wall_us[ok] / 1e6 - t_dev_s[ok])))
