"""The stream core gives the same samples (bit for bit), messages and counters in its
two forms, items (live, replay) and tables (export, analyze), whatever the batching:
one byte at a time, odd sizes, or all at once; on clean bytes, garbage and bit flips.
What they give is pinned to the decoders before the core by test_stream_golden.py."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
import wiregen
from blocks_table import table_from_blocks
from leakmon import wire
from leakmon.wire.scan import crc16_many
from leakmon.wire.stream import NodeStream, SampleBlock, SampleTable


def stream_result(data: bytes, chunk: int | None = None) -> tuple[SampleTable, NodeStream, list]:
    """The item form, fed in chunks of the given size (None: all at once)."""
    s = NodeStream()
    items = []
    step = chunk or max(len(data), 1)
    for k in range(0, len(data), step):
        items += s.feed(data[k : k + step])
    items += s.finish()
    return table_from_blocks([i for i in items if isinstance(i, SampleBlock)]), s, [
        i for i in items if not isinstance(i, SampleBlock)]


def fast_result(data: bytes, chunk: int | None = None) -> tuple[SampleTable, NodeStream, list]:
    """The table form, fed in chunks of the given size (None: all at once)."""
    f = NodeStream()
    tables, msgs = [], []
    step = chunk or max(len(data), 1)
    for k in range(0, len(data), step):
        t, m = f.feed_table(data[k : k + step])
        tables.append(t)
        msgs += m
    t, m = f.finish_table()
    return SampleTable.concat(tables + [t]), f, msgs + m


def assert_same(data: bytes, chunk: int | None = None) -> SampleTable:
    """Items all at once, items in chunks and tables in chunks agree in everything."""
    want, s, want_msgs = stream_result(data)
    for got, f, got_msgs in (fast_result(data, chunk), stream_result(data, chunk)):
        for name in SampleTable.__slots__:
            a, b = getattr(want, name), getattr(got, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), name
        assert f.decoder.stats == s.decoder.stats
        assert f.stats == s.stats
        assert got_msgs == want_msgs
    return got


def flip_bits(data: bytes, rate: float, seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for i in range(len(out)):
        if rng.random() < rate:
            out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("chunk", [None, 1000, 61])
def test_clean_capture_any_chunking(channels, chunk):
    n = 100 if chunk == 61 else 400  # small feeds cost per call: fewer frames
    got = assert_same(wiregen.capture(n, channels=channels, seed=channels), chunk)
    assert len(got) == n * 10 * channels


@pytest.mark.parametrize("rate, seed", [(1e-4, 1), (1e-3, 2), (1e-2, 3), (5e-2, 4)])
def test_bit_flips_at_several_rates(rate, seed):
    data = flip_bits(wiregen.capture(600, channels=2, seed=seed), rate, seed)
    assert_same(data)
    assert_same(data, chunk=777)


def test_every_single_bit_flip_of_a_frame():
    head = wiregen.handshake()
    body = wiregen.samples(3, seq=2, seed=5)
    n = len(body) // 3
    for bit in range(n * 8):
        bad = bytearray(body)
        bad[n + bit // 8] ^= 1 << (bit % 8)
        assert_same(head + bytes(bad))


def test_garbage_false_syncs_and_fake_headers_between_frames():
    rng = random.Random(6)
    parts = [wiregen.handshake(channels=2)]
    frames = wiregen.samples(200, channels=2, seq=3, seed=6)
    size = len(frames) // 200
    for k in range(200):
        junk = rng.choice([b"", rng.randbytes(rng.randrange(1, 30)), b"\xa5\x4c", b"\xa5" * 5,
                           b"\xa5\x4c\x01\x03\x00\x00\xff\x00", b"\xa5\x4c\x01\x03\x00\x00\xff\xff"])
        parts += [junk, frames[k * size : (k + 1) * size]]
    data = b"".join(parts)
    assert_same(data)
    assert_same(data, chunk=97)


def test_other_messages_versions_types_and_malformed_samples():
    chans = [(0, 6)]
    good = wire.samples_payload(5000, 100000, chans, [bytes(range(6))] * 10)
    other_version = bytearray(wire.frame(wire.T_SAMPLES, 9, good))
    other_version[2] = 2
    c = wire.crc16(other_version, 2, len(other_version) - 2)
    other_version[-2:] = bytes((c & 0xFF, c >> 8))
    data = b"".join([
        wire.frame(wire.T_SAMPLES, 0, good),  # before the handshake: counted, not decoded
        wiregen.handshake(seq=1),
        wire.frame(wire.T_SAMPLES, 3, good),
        wire.frame(wire.T_EVENT, 4, wire.event_payload(7, wire.EV_SENSOR_ERROR, 0, -5, "i2c")),
        wire.frame(wire.T_SAMPLES, 5, good[:-1]),  # rows do not fill the payload
        wire.frame(wire.T_SAMPLES, 6, good[:5]),  # header cut short
        wire.frame(0x33, 7, b"future"),  # unknown type
        bytes(other_version),
        wire.frame(wire.T_SAMPLES, 10, wire.samples_payload(6000, 100000, [(4, 6)], [bytes(6)] * 3)),  # no CALIB
        wire.frame(wire.T_SAMPLES, 11, wire.samples_payload(7000, 50000, chans, [bytes(range(6))] * 4)),
        wire.frame(wire.T_SAMPLES, 20, wire.samples_payload(8000, 50000, chans, [])),  # no rows, a seq gap
        wire.frame(wire.T_STATUS, 21, wire.status_payload(1, 2, 3, 4, 5, 6)),
    ])
    got = assert_same(data)
    assert len(got) == 14  # the 10 rows of frame 3 and the 4 of frame 11
    _, s, _ = stream_result(data)
    # 5, 6 (bad fill, cut header), 10 (channel 4 has no CALIB), 20 (no rows): malformed.
    assert s.stats.malformed == 4 and s.stats.samples_before_handshake == 10
    assert s.decoder.stats.unknown_version == 1 and s.stats.unknown_types == 1


def test_device_ticks_wrap_and_a_new_hello_resets_the_time_base():
    bits = 24  # wraps every 16.8 s; frames are 1 s apart
    data = (wiregen.handshake(ticks_bits=bits)
            + wiregen.samples(50, seq=2, t0_us=(1 << bits) - 3_000_000, ticks_bits=bits, seed=7)
            + wiregen.handshake(ticks_bits=26, seq=52)
            + wiregen.samples(20, seq=54, t0_us=5, ticks_bits=26, seed=8))
    got = assert_same(data)
    assert np.all(np.diff(got.t_s[:500]) > 0)  # through the wrap


def test_sequence_numbers_wrap_without_counting_losses():
    data = wiregen.handshake(seq=65530) + wiregen.samples(30, seq=65532, seed=9)
    f = NodeStream()
    f.feed(data)
    assert f.stats.lost_frames == 0
    assert_same(data)


@pytest.mark.parametrize("seed", range(3))
def test_crc16_many_agrees_with_the_wire_module(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, 20000, dtype=np.uint8)
    length = rng.choice([0, 1, 2, 3, 37, 80, 81], 500)
    start = rng.integers(0, len(a) - 100, 500)
    got = crc16_many(a, start, length)
    want = [wire.crc16(a.tobytes(), int(s), int(s + n)) for s, n in zip(start, length)]
    assert got.tolist() == want


def test_crc16_many_check_value():
    a = np.frombuffer(b"123456789" * 64, np.uint8)
    got = crc16_many(a, np.arange(0, 9 * 64, 9), np.full(64, 9))
    assert set(got.tolist()) == {0x29B1}
    assert struct.pack("<H", 0x29B1)  # the CRC's documented check value (PROTOCOL.md)


def random_session(rng: random.Random) -> bytes:
    """Handshakes (changing channels, rows, tick widths), SAMPLES, other and unknown
    messages, bad calibrations, garbage and sequence gaps, then bit flips."""
    parts, seq = [], 0
    for _ in range(rng.randrange(1, 30)):
        r = rng.random()
        if r < 0.15:
            nch = rng.choice([1, 2])
            parts.append(wiregen.handshake(channels=nch, seq=seq, ticks_bits=rng.choice([20, 30]),
                                             rows=rng.choice([1, 10])))
            seq += 1 + nch
        elif r < 0.6:
            n = rng.randrange(1, 6)
            parts.append(wiregen.samples(n, channels=rng.choice([1, 2]), rows=rng.choice([1, 3, 10]), seq=seq,
                                           t0_us=rng.randrange(1 << 20), seed=rng.randrange(99)))
            seq += n
        elif r < 0.7:
            parts.append(wire.frame(rng.choice([3, 4, 5, 6, 0x30]), seq, rng.randbytes(rng.randrange(40))))
            seq += 1
        elif r < 0.8:
            parts.append(rng.randbytes(rng.randrange(1, 20)))
        elif r < 0.9:
            seq += rng.randrange(1, 5)
        else:  # a calibration, sometimes of an unknown chip or the wrong size
            block = bytes([rng.randrange(3), rng.choice([1, 2, 9])]) + rng.randbytes(rng.choice([21, 5]))
            parts.append(wire.frame(wire.T_CALIB, seq, block))
            seq += 1
    return flip_bits(b"".join(parts), 0.002, rng.randrange(1 << 30))


def outcome(run, data: bytes):
    return run(data)  # the core never raises on what a node sends: a refusal is a counted malformed frame


@pytest.mark.parametrize("seed", range(4))
def test_random_sessions_agree_in_both_forms_and_any_batching(seed):
    rng = random.Random(seed)
    for _ in range(40):
        data = random_session(rng)
        chunk = rng.choice([None, 50, 500])

        def stream(d: bytes):
            t, s, msgs = stream_result(d)
            return [getattr(t, k).tolist() for k in SampleTable.__slots__], s.decoder.stats, s.stats, msgs

        def fast(d: bytes):
            t, f, msgs = fast_result(d, chunk)
            return [getattr(t, k).tolist() for k in SampleTable.__slots__], f.decoder.stats, f.stats, msgs

        assert outcome(fast, data) == outcome(stream, data)
