"""The streaming decoder under garbage, truncation, bit flips and odd chunking."""

import random

import pytest
from leakmon import wire
from leakmon.wire.framing import FrameDecoder


def frames(n, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        out.append(wire.frame(wire.T_SAMPLES, i, payload))
    return out


def decode_all(data, chunk=None):
    d = FrameDecoder()
    got = []
    for k in range(0, len(data), chunk or max(len(data), 1)):
        got += d.feed(data[k : k + (chunk or len(data))])
    return got + d.finish(), d


@pytest.mark.parametrize("chunk", [None, 1, 7, 64])
def test_any_chunking_gives_the_same_frames(chunk):
    fs = frames(50)
    got, d = decode_all(b"".join(fs), chunk)
    assert [f.seq for f in got] == list(range(50))
    assert [wire.frame(f.msg_type, f.seq, f.payload) for f in got] == fs
    assert d.stats.crc_errors == 0 and d.stats.bytes_skipped == 0


def test_garbage_between_frames_is_skipped_and_counted():
    fs = frames(20, seed=1)
    rng = random.Random(2)
    junk = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in fs]
    # Garbage full of sync bytes and fake headers is the hard case.
    junk[3] = b"\xa5\x4c\x01\x03\x00\x00\xff\x00"  # a header promising 255 bytes
    junk[7] = b"\xa5" * 9
    got, d = decode_all(b"".join(j + f for j, f in zip(junk, fs)), chunk=5)
    assert [f.seq for f in got] == list(range(20))


def test_truncated_frame_does_not_swallow_the_next_one():
    fs = frames(5, seed=3)
    cut = fs[2][: len(fs[2]) // 2]
    got, d = decode_all(fs[0] + fs[1] + cut + fs[3] + fs[4])
    assert [f.seq for f in got] == [0, 1, 3, 4]
    assert d.stats.crc_errors >= 1


def test_every_single_bit_flip_is_rejected_and_neighbours_survive():
    fs = frames(3, seed=4)
    victim = fs[1]
    for bit in range(len(victim) * 8):
        bad = bytearray(victim)
        bad[bit // 8] ^= 1 << (bit % 8)
        got, _ = decode_all(fs[0] + bytes(bad) + fs[2])
        seqs = [f.seq for f in got]
        assert seqs[0] == 0 and seqs[-1] == 2, bit
        # A flip may not let a corrupted copy of frame 1 through.
        assert all(wire.frame(f.msg_type, f.seq, f.payload) in fs for f in got), bit


def other_version(msg_type: int, seq: int, payload: bytes, version: int = 2) -> bytes:
    """A frame with a good CRC and another version byte."""
    f = bytearray(wire.frame(msg_type, seq, payload))
    f[wire.OFF_VERSION] = version
    c = wire.crc16(f, 2, len(f) - 2)
    f[-2], f[-1] = c & 0xFF, c >> 8
    return bytes(f)


def test_unknown_version_is_counted_and_given_up_one_byte_past_its_sync():
    good = wire.frame(wire.T_EVENT, 1, b"x" * 10)
    other = other_version(wire.T_EVENT, 2, b"y" * 10)
    got, d = decode_all(other + good)
    assert [f.seq for f in got] == [1]
    assert d.stats.unknown_version == 1
    assert d.stats.bytes_skipped == len(other)  # every byte is skipped or in a frame


def test_a_frame_of_unknown_version_never_hides_the_intact_frame_inside_it():
    """A forged header of another version whose CRC is good by chance, claiming the bytes of
    the next frame: the receiver cannot trust its length, so the frame inside still comes out."""
    inner = wire.frame(wire.T_SAMPLES, 7, bytes(range(40)))
    forged = other_version(wire.T_EVENT, 3, inner + b"tail")
    for chunk in (None, 1, 5):
        got, d = decode_all(forged + wire.frame(wire.T_EVENT, 8, b""), chunk)
        assert [f.seq for f in got] == [7, 8]
        assert d.stats.unknown_version == 1


def test_random_corruption_at_one_percent_never_yields_a_corrupt_frame():
    fs = frames(400, seed=5)
    rng = random.Random(6)
    data = bytearray(b"".join(fs))
    for i in range(len(data)):
        if rng.random() < 0.001:
            data[i] ^= 1 << rng.randrange(8)
    got, d = decode_all(bytes(data), chunk=100)
    valid = set(fs)
    assert all(wire.frame(f.msg_type, f.seq, f.payload) in valid for f in got)
    intact = sum(1 for f in fs if f in bytes(data))
    assert len(got) >= intact
    assert d.pending == 0


def test_live_stream_recovers_frame_behind_corrupt_length_without_finish():
    fs = frames(12, seed=7)
    bad = bytearray(fs[1])
    bad[7] ^= 0x03  # length now promises ~800 more bytes
    d = FrameDecoder()
    got = d.feed(fs[0] + bytes(bad) + fs[2])
    for f in fs[3:]:
        got += d.feed(f)  # the stream goes on: the bad CRC is found, then frame 2
    assert [f.seq for f in got] == [0] + list(range(2, 12))
