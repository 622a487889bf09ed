# Preallocated outgoing frames of the node: the SAMPLES frame with one memoryview
# per (row, channel) slot, and the STATUS frame. Building one allocates; using it
# (fill slots, seal, send) allocates nothing.
import struct

import wire

COUNTER_MASK = 0x3FFFFFFF  # counters wrap at 2**30: small ints on every port
STUCK_SPAN_US = 1000000  # identical rows over a shorter span may just be a slow conversion rate


class SamplesFrame:
    """Rows of raw sensor bytes for a fixed list of channels."""

    def __init__(self, channels, rows, period_us):
        # channels: [(channel_id, raw_size)]; rows is clamped so the payload fits MAX_PAYLOAD.
        self.channels = channels
        self.nch = len(channels)
        row_size = 0
        for _, size in channels:
            row_size += size
        head = wire.SAMPLES_HEADER_SIZE + 2 * self.nch
        if row_size:
            rows = min(rows, (wire.MAX_PAYLOAD - head) // row_size)
        if rows < 1:
            raise ValueError("one row of %d channels does not fit a frame" % self.nch)
        self.rows = rows
        self.buf = bytearray(wire.OVERHEAD + head + rows * row_size)
        mv = memoryview(self.buf)
        data = wire.samples_begin(self.buf, 0, period_us, rows, channels)
        self.slots = []
        for r in range(rows):
            off = data + r * row_size
            for _, size in channels:
                self.slots.append(mv[off : off + size])
                off += size
        # A view of the whole frame for every row count, so a short frame costs nothing.
        self.views = [mv[: wire.OVERHEAD + head + n * row_size] for n in range(rows + 1)]
        self.plens = [head + n * row_size for n in range(rows + 1)]
        self.row = 0
        self.t0 = 0
        # Stuck detection: each channel's latest raw bytes and how many samples in a
        # row repeated them (-1: nothing seen yet).
        self.last = [bytearray(size) for _, size in channels]
        self.runs = [-1] * self.nch

    def stuck_channel(self, period_us):
        """Index of a channel whose raw bytes are impossible (all 0x00 or all 0xFF) or
        have not changed for STUCK_SPAN_US, across frames (a live sensor's noise moves
        its low bits; a shorter run may just be sampling faster than the chip
        converts), else -1. Runs once per frame, before seal; allocates nothing."""
        n = self.nch
        slots = self.slots
        for k in range(n):
            first = slots[k]
            size = len(first)
            zeros = ones = 0
            for i in range(size):
                b = first[i]
                if b == 0:
                    zeros += 1
                elif b == 0xFF:
                    ones += 1
            if zeros == size or ones == size:
                return k
            prev = self.last[k]
            run = self.runs[k]
            for r in range(self.row):
                cur = slots[r * n + k]
                same = run >= 0
                for i in range(size):
                    if cur[i] != prev[i]:
                        same = False
                    prev[i] = cur[i]
                run = run + 1 if same else 0
            self.runs[k] = run
            if run * period_us >= STUCK_SPAN_US:
                self.runs[k] = -1
                return k
        return -1

    def seal(self, seq, period_us):
        """Close the rows gathered so far; returns the frame view to send (or None)."""
        n = self.row
        if n == 0:
            return None
        struct.pack_into("<IIH", self.buf, wire.HEADER_SIZE, self.t0, period_us, n)
        wire.seal(self.buf, wire.T_SAMPLES, seq, self.plens[n])
        self.row = 0
        return self.views[n]


class StatusFrame:
    """STATUS: six counters, then one I2C error count per channel."""

    def __init__(self, nch):
        self.nch = nch
        self.plen = struct.calcsize(wire.STATUS_FMT) + 4 * nch
        self.buf = bytearray(wire.OVERHEAD + self.plen)
        self.view = memoryview(self.buf)

    def seal(self, seq, uptime_s, samples, frames, overruns, errors, free_heap):
        """errors: per-channel counts (list of small ints). Returns the frame view."""
        total = 0
        off = wire.HEADER_SIZE + 24
        for i in range(self.nch):
            e = errors[i]
            total = (total + e) & COUNTER_MASK
            struct.pack_into("<I", self.buf, off + 4 * i, e)
        struct.pack_into(wire.STATUS_FMT, self.buf, wire.HEADER_SIZE, uptime_s, samples, frames, overruns,
                         total, free_heap)
        wire.seal(self.buf, wire.T_STATUS, seq, self.plen)
        return self.view
