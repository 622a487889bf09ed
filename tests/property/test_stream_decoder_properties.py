"""Property tests of the stream core (hypothesis): CRC-valid frames of every message type,
with payloads random or built field by field with values drawn from the whole range of
each field, after a real handshake. Nothing a node can send makes the core raise: an
impossible field is a malformed frame, counted. Both forms (items, tables) agree, and the
vectorized framing's fast path takes exactly the frames the general path takes."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leakmon import wire
from leakmon.wire import messages
from leakmon.wire.framing import DecoderStats
from leakmon.wire.scan import _find_general, find_frames
from leakmon.wire.stream import NodeStream, SampleBlock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: wiregen
import wiregen  # noqa: E402

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

u8, u16_, u32_ = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
chips = st.one_of(st.sampled_from(sorted(messages.CHIP_NAMES)), u8)


@st.composite
def hello(draw: st.DrawFn) -> bytes:
    chans = draw(st.lists(st.tuples(st.one_of(st.integers(0, 3), u8), chips, u8, st.one_of(st.just(0xFF), u8),
                                    st.one_of(st.just(0x77), u8), st.one_of(st.just(6), st.just(5), u8)),
                          max_size=4))
    return wire.hello_payload(draw(st.text(max_size=8)), draw(st.text(max_size=8)),
                              draw(st.one_of(st.just(30), u8)), draw(st.one_of(st.just(0), u32_)),
                              draw(st.one_of(st.just(0), u16_)), chans)


@st.composite
def samples(draw: st.DrawFn) -> bytes:
    chans = draw(st.lists(st.tuples(st.one_of(st.integers(0, 3), u8), st.one_of(st.just(6), st.just(5), u8)),
                          max_size=3))
    rows = draw(st.integers(0, 4))
    size = sum(s for _, s in chans)
    body = draw(st.binary(min_size=rows * size, max_size=rows * size)) if size * rows <= 600 else bytes(0)
    p = wire.samples_payload(draw(u32_), draw(st.one_of(st.just(0), u32_)), chans,
                             [body[k * size : (k + 1) * size] for k in range(rows)] if size * rows <= 600 else [])
    return p if draw(st.booleans()) else p[: draw(st.integers(0, len(p)))] + draw(st.binary(max_size=4))


calib = st.builds(lambda ch, chip, block: bytes((ch, chip)) + block, st.one_of(st.integers(0, 3), u8), chips,
                  st.one_of(st.just(wiregen.BMP3_CALIB), st.binary(max_size=30)))
payloads = st.one_of(
    st.tuples(st.just(wire.T_HELLO), hello()),
    st.tuples(st.just(wire.T_SAMPLES), samples()),
    st.tuples(st.just(wire.T_CALIB), calib),
    st.tuples(st.just(wire.T_EVENT), st.builds(wire.event_payload, u32_, u8, u8, st.integers(-2**31, 2**31 - 1),
                                              st.text(max_size=10))),
    st.tuples(st.just(wire.T_ACK), st.builds(wire.ack_payload, u16_, u8, u8, st.text(max_size=10))),
    st.tuples(st.just(wire.T_STATUS), st.builds(lambda *v: struct.pack("<6I", *v), *[u32_] * 6)
              .flatmap(lambda p: st.binary(max_size=12).map(lambda t: p + t))),
    st.tuples(st.just(wire.T_TIME), st.builds(lambda a, b: struct.pack("<IQ", a, b), u32_, st.integers(0, 2**64 - 1))),
    st.tuples(st.sampled_from([wire.T_HELLO, wire.T_CALIB, wire.T_SAMPLES, wire.T_EVENT, wire.T_ACK, wire.T_STATUS,
                               wire.T_TIME]) | u8, st.binary(max_size=80)),
)
sessions = st.lists(st.tuples(payloads, st.booleans()), max_size=12)


def build(frames: list[tuple[tuple[int, bytes], bool]]) -> bytes:
    """A real handshake, then the drawn frames, each followed (or not) by a good SAMPLES frame."""
    out = [wiregen.handshake(channels=2, seq=0)]
    seq = 3
    for (t, p), good in frames:
        out.append(wire.frame(t, seq, p))
        seq += 1
        if good:
            out.append(wiregen.samples(1, channels=2, seq=seq, seed=seq))
            seq += 1
    return b"".join(out)


def items_and_tables(data: bytes, chunk: int) -> None:
    s, f = NodeStream(), NodeStream()
    items, tables = [], []
    for k in range(0, len(data), chunk):
        items += s.feed(data[k : k + chunk])
        tables.append(f.feed_table(data[k : k + chunk]))
    items += s.finish()
    tables.append(f.finish_table())
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    n = sum(len(t) for t, _ in tables)
    assert n == sum(len(b.t_s) for b in blocks)
    if n:
        got = np.concatenate([t.pressure_pa for t, _ in tables if len(t)])
        want = np.concatenate([b.pressure_pa for b in blocks])
        assert np.array_equal(got, want, equal_nan=True)
    assert s.stats == f.stats and s.decoder.stats == f.decoder.stats
    assert [i for i in items if not isinstance(i, SampleBlock)] == [m for _, ms in tables for m in ms]
    for i in items:  # what reaches the commands is in range
        if isinstance(i, messages.Hello):
            assert i.period_us >= 1 and i.rows_per_frame >= 1 and all(c.addr <= 0x7F for c in i.channels)
        if isinstance(i, SampleBlock):
            assert len(i.t_s) >= 1 and len(i.t_s) == len(i.pressure_pa) == len(i.temperature_k)


@SETTINGS
@given(sessions, st.sampled_from([4096, 97, 13]))
def test_no_frame_of_any_type_makes_the_core_raise(frames, chunk):
    items_and_tables(build(frames), chunk)


@SETTINGS
@given(st.lists(st.one_of(st.binary(max_size=30), st.builds(wire.frame, u8, u16_, st.binary(max_size=60)),
                          st.just(wiregen.samples(3, seq=5)), st.just(wire.SYNC)), max_size=12).map(b"".join),
       st.booleans())
def test_fast_framing_takes_what_the_general_framing_takes(data, final):
    st_fast, st_general = DecoderStats(), DecoderStats()
    fast = find_frames(data, st_fast, final)
    general = _find_general(np.frombuffer(data, np.uint8), st_general, final, wire.MAX_PAYLOAD)
    assert fast.start.tolist() == general.start.tolist() and fast.plen.tolist() == general.plen.tolist()
    assert (fast.consumed, st_fast) == (general.consumed, st_general)


def test_samples_whose_raw_size_is_not_the_chips_are_malformed():
    """12 rows of 5 bytes for a BMP390 (6-byte samples), CRC-valid: counted, never raised."""
    bad = wire.frame(wire.T_SAMPLES, 3, wire.samples_payload(0, 100000, [(0, 5)], [bytes(5)] * 12))
    data = wiregen.handshake(seq=0) + bad + wiregen.samples(2, seq=4)
    for chunk in (len(data), 7):
        s = NodeStream()
        items = [i for k in range(0, len(data), chunk) for i in s.feed(data[k : k + chunk])]
        assert [i.seq for i in items if isinstance(i, SampleBlock)] == [4, 5]
        assert s.stats.malformed == 1
        f = NodeStream()
        table, _ = f.feed_table(data)
        assert len(table) == 20 and f.stats.malformed == 1


def test_impossible_hello_fields_are_malformed_and_leave_the_state_alone():
    good = wiregen.handshake(seq=0)
    chans = [(0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x77, 6)]
    bad = [wire.hello_payload("x", "b", 30, 0, 10, chans),  # sample period 0
           wire.hello_payload("x", "b", 30, 100000, 0, chans),  # no rows
           wire.hello_payload("x", "b", 30, 100000, 10, [(0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x80, 6)]),
           wire.hello_payload("x", "b", 30, 100000, 10, [(0, wire.CHIP_BMP390, 0, 9, 0x77, 6)]),
           wire.hello_payload("x", "b", 30, 100000, 10, chans * 2),  # a channel twice
           wire.hello_payload("x", "b", 30, 100000, 10, [(0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x77, 5)]),
           wire.hello_payload("x", "b", 3, 100000, 10, chans),  # a clock that wraps every 8 us
           wire.hello_payload("x", "b", 30, 100000, 10, chans)[:12] + b"\x40"]  # a string past the end
    s = NodeStream()
    s.feed(good)
    hello = s.hello
    for k, p in enumerate(bad):
        assert s.feed(wire.frame(wire.T_HELLO, 3 + k, p)) == []
    assert s.stats.malformed == len(bad) and s.hello is hello and s.ready
    assert s.refused is not None and "HELLO" in s.refused
