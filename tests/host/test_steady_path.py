"""The live path's shortcuts agree with the general path, bit for bit.

A read made only of frames that repeat the last run's layout is decoded without the
general frame search and layout checks (NodeStream._steady_items, FrameDecoder.take_expected);
the time base has a shortcut for ticks that only go forward (TickUnwrapper.unwrap_f64), and
BMP3 compensation a form with fewer numpy calls (bmp3.RowCompensator). Each is checked here
against the path it shortcuts, on random streams: node streams whose layout, period, rows,
sequence numbers and ticks change, with other messages, garbage and bit flips between, fed
in reads of random sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leakmon import sensors, wire
from leakmon.sensors import bmp3
from leakmon.wire.stream import NodeStream, SampleBlock
from leakmon.wire.timebase import TickUnwrapper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: wiregen
import wiregen  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


OTHER_CALIB = wiregen.BMP3_CALIB[:5] + bytes([wiregen.BMP3_CALIB[5] ^ 0x40]) + wiregen.BMP3_CALIB[6:]  # par_t3 moved


class GeneralOnly(NodeStream):
    """The core with the live shortcut never taken: every read goes through the general path."""

    def feed(self, data: bytes | bytearray | memoryview) -> list:  # type: ignore[override]
        self._steady = None
        return super().feed(data)


@st.composite
def segment(draw: st.DrawFn, channels: int, bits: int) -> bytes:
    """A run of SAMPLES frames, or something between runs: another message, garbage, a
    second handshake with another layout."""
    kind = draw(st.sampled_from(["samples"] * 6 + ["event", "garbage", "handshake", "calib"]))
    if kind == "samples":
        return wiregen.samples(draw(st.integers(1, 120)), channels, rows=draw(st.sampled_from([10, 10, 10, 1, 3])),
                               period_us=draw(st.sampled_from([100_000, 100_000, 1, 7_000_000])),
                               seq=draw(st.integers(0, 0xFFFF)), t0_us=draw(st.integers(0, 2**32 - 1)),
                               ticks_bits=bits, seed=draw(st.integers(0, 1000)))
    if kind == "event":
        return wire.frame(wire.T_EVENT, draw(st.integers(0, 0xFFFF)), wire.event_payload(1, 2, 0, 3, "x"))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=40)) + draw(st.sampled_from([b"", wire.SYNC]))
    if kind == "calib":  # channel 0 recalibrated, with the same block or another one
        block = draw(st.sampled_from([wiregen.BMP3_CALIB, OTHER_CALIB]))
        return wire.frame(wire.T_CALIB, 0, wire.calib_payload(0, wire.CHIP_BMP390, block))
    return wiregen.handshake(draw(st.integers(1, 3)), rows=draw(st.integers(1, 12)), ticks_bits=bits)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A handshake, then segments (the layout drifting), a few bytes flipped, and read sizes."""
    channels, bits = draw(st.integers(1, 3)), draw(st.sampled_from([16, 30, 32]))
    data = bytearray(wiregen.handshake(channels, rows=10, ticks_bits=bits))
    for part in draw(st.lists(segment(channels, bits), min_size=1, max_size=8)):
        data += part
    for at in draw(st.lists(st.integers(0, len(data) - 1), max_size=3)):
        data[at] ^= 1 << draw(st.integers(0, 7))
    reads = draw(st.lists(st.sampled_from([4096, 4096, 850, 85, 1000, 7, 20000]), min_size=1, max_size=6))
    return bytes(data), reads


def decode(stream: NodeStream, data: bytes, reads: list[int]) -> list:
    """Every item of data fed in reads of the given sizes (cycled), then finish()."""
    out, k, i = [], 0, 0
    while k < len(data):
        out += stream.feed(data[k : k + reads[i % len(reads)]])
        k += reads[i % len(reads)]
        i += 1
    return out + stream.finish()


def assert_same_items(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(w) or (isinstance(g, SampleBlock) and isinstance(w, SampleBlock))
        if isinstance(g, SampleBlock):
            assert (g.channel, g.seq) == (w.channel, w.seq)
            for name in ("t_s", "pressure_pa", "temperature_k"):
                assert getattr(g, name).tobytes() == getattr(w, name).tobytes(), name
        else:
            assert g == w


@SETTINGS
@given(streams())
def test_the_live_shortcut_gives_what_the_general_path_gives(drawn):
    data, reads = drawn
    fast, general = NodeStream(), GeneralOnly()
    assert_same_items(decode(fast, data, reads), decode(general, data, reads))
    assert fast.stats == general.stats and fast.decoder.stats == general.decoder.stats
    assert fast.decoder.pending == general.decoder.pending


def test_a_steady_stream_takes_the_shortcut_and_a_change_leaves_it():
    """On a clean stream nearly every 4 KB read takes the shortcut; a new handshake with
    another layout leaves it (the general path decodes the change) and the shortcut resumes."""
    data = (wiregen.capture(600) + wiregen.handshake(2, rows=4, seq=700)
            + wiregen.samples(600, channels=2, rows=4, seq=703, seed=1))
    fast, taken = NodeStream(), []
    steady = fast._steady_items
    fast._steady_items = lambda frames: taken.append(len(frames)) or steady(frames)  # type: ignore[method-assign]
    got = decode(fast, data, [4096])
    assert_same_items(got, decode(GeneralOnly(), data, [4096]))
    reads = -(-len(data) // 4096)
    assert len(taken) >= reads - 6 and sum(taken) >= 600 + 600 - 6 * 50
    assert {b.channel for b in got if isinstance(b, SampleBlock)} == {0, 1}


@SETTINGS
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=60), st.sampled_from([16, 30, 32]),
       st.lists(st.integers(-3, 2**20), max_size=60), st.integers(1, 5))
def test_the_forward_ticks_shortcut_unwraps_as_the_general_unwrapper(starts, bits, steps, batches):
    """Ticks drawn forward, backward and across wraps, in batches: same microseconds."""
    ticks = [starts[0]]
    for d in steps:
        ticks.append(ticks[-1] + d)
    raw = np.array(ticks, np.int64) % (1 << bits) if starts[-1] % 2 else np.array(ticks, np.int64) & 0xFFFFFFFF
    raw = raw.astype("<u4")
    fast, general = TickUnwrapper(bits), TickUnwrapper(bits)
    for part in np.array_split(raw, batches):
        assert fast.unwrap_f64(part).tobytes() == general.unwrap_many(part).astype(np.float64).tobytes()


@SETTINGS
@given(st.binary(min_size=6, max_size=6 * 50).map(lambda b: b[: len(b) // 6 * 6]),
       st.sampled_from([wiregen.BMP3_CALIB, bytes(21), b"\xff" * 21]))
def test_bmp3_rows_compensate_as_the_reference_formula(raw, block):
    rows = np.frombuffer(raw, np.uint8).reshape(-1, 6)
    cal = bmp3.parse_calibration(block)
    want_p, want_k = bmp3.compensate(*bmp3.unpack_raw(rows), cal)
    got_p, got_k = bmp3.make_compensator(block)(np.ascontiguousarray(rows))
    assert got_p.tobytes() == want_p.tobytes() and got_k.tobytes() == want_k.tobytes()


@SETTINGS
@given(st.integers(2, 5).flatmap(lambda c: st.tuples(
    st.just(c), st.binary(min_size=6 * c, max_size=6 * c * 40).map(lambda b, c=c: b[: len(b) // (6 * c) * 6 * c]),
    st.lists(st.binary(min_size=21, max_size=21), min_size=c, max_size=c))))
def test_bmp3_bank_compensates_each_channel_as_its_own_compensator(drawn):
    # A frame's row holds each channel's six bytes in turn; the bank does all channels in
    # one pass with per-channel coefficients, and must give each column bit for bit.
    c, raw, blocks = drawn
    blocks = [wiregen.BMP3_CALIB] + blocks[1:]  # one real calibration, the rest drawn
    rows = np.frombuffer(raw, np.uint8).reshape(-1, 6 * c)
    comps = [bmp3.make_compensator(b) for b in blocks]
    bank = sensors.bank(comps)
    assert bank is not None
    got_p, got_k = bank(rows[::-1])  # (a gather of frames need not be contiguous)
    for j, comp in enumerate(comps):
        want_p, want_k = comp(np.ascontiguousarray(rows[::-1, 6 * j : 6 * j + 6]))
        assert got_p[:, j].tobytes() == want_p.tobytes() and got_k[:, j].tobytes() == want_k.tobytes()
