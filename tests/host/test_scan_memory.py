"""Memory stays O(input) whatever the bytes (issue: sync bytes followed by the longest length,
repeated, made the vectorized framing allocate ~400x its input). Measured with tracemalloc,
which sees numpy's buffers."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from leakmon.wire.framing import FrameDecoder
from leakmon.wire.stream import NodeStream

LIMIT = 20  # peak bytes allocated per input byte, at most
SIZE = 1 << 20

PATTERNS = {
    "sync and the longest length": b"\xa5\x4c\x01\x03\x00\x00\x00\x04",
    "sync and length 1023": b"\xa5\x4c\x01\x03\x00\x00\xff\x03",
    "sync pairs only": b"\xa5\x4c",
    "sync and a short length": b"\xa5\x4c\x01\x03\x00\x00\x01\x00",
    "random": None,
}


def pattern(name: str) -> bytes:
    p = PATTERNS[name]
    if p is None:
        return np.random.default_rng(1).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    return (p * (SIZE // len(p) + 1))[:SIZE]


def peak_per_byte(fn, data: bytes) -> float:
    tracemalloc.start()
    try:
        fn(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / len(data)


@pytest.mark.parametrize("name", list(PATTERNS))
def test_framing_peak_memory_is_a_small_multiple_of_the_input(name):
    data = pattern(name)

    def frame(d: bytes) -> None:
        dec = FrameDecoder()
        dec.feed(d)
        dec.finish()

    assert peak_per_byte(frame, data) < LIMIT


@pytest.mark.parametrize("name", ["sync and the longest length", "sync pairs only"])
def test_stream_core_peak_memory_is_a_small_multiple_of_the_input(name):
    data = pattern(name)

    def decode(d: bytes) -> None:
        s = NodeStream()
        s.feed_table(d)
        s.finish_table()

    assert peak_per_byte(decode, data) < LIMIT


def test_the_measure_can_fail():
    """A copy per sync candidate of its claimed length (the old way) is far above the limit."""
    data = pattern("sync and the longest length")[: SIZE // 8]

    def gather(d: bytes) -> None:
        a = np.frombuffer(d, np.uint8)
        starts = np.flatnonzero(a[:-1] == 0xA5)
        starts = starts[starts + 1032 <= len(a)]
        np.lib.stride_tricks.sliding_window_view(a, 1032)[starts].copy()

    assert peak_per_byte(gather, data) > LIMIT
