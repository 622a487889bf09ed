"""Property tests of the host's FrameDecoder (hypothesis).

Two oracles: what was sent (every intact frame comes out, in order, and nothing
else), and a reference receiver written straight from PROTOCOL.md ("What a
receiver does") that scans the whole stream at once. The decoder, fed the same
bytes in arbitrary chunks and then finish(), must agree with the reference frame
for frame and counter for counter.

A CRC-16 lets a random corrupted span through with probability 2^-16. Examples in
which the reference finds such a chance frame (a frame that was not sent) are
discarded with assume(): they test CRC-16, not the decoder. derandomize=True keeps
the examples, and so the outcome, the same from run to run.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from leakmon import wire
from leakmon.wire.framing import Frame, FrameDecoder
from reference_receiver import reference_decode

FLIP_P = 0.01
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decode_chunked(data: bytes, cuts: list[int]) -> tuple[list[Frame], FrameDecoder]:
    """Feed data in chunks of the given sizes (cycled; 0 = an empty feed), then finish()."""
    d = FrameDecoder()
    got: list[Frame] = []
    pos, k = 0, 0
    while pos < len(data):
        size = cuts[k % len(cuts)] if cuts else len(data)
        got += d.feed(data[pos : pos + size])
        pos += size
        k += 1
    got += d.finish()
    return got, d


def encode(f: Frame) -> bytes:
    return wire.frame(f.msg_type, f.seq, f.payload)


# -- strategies -------------------------------------------------------------------------
payloads = st.one_of(st.binary(max_size=40), st.binary(min_size=41, max_size=300))
frames = st.builds(wire.frame, st.integers(0, 255), st.integers(0, 0xFFFF), payloads)


@st.composite
def fake_header(draw: st.DrawFn) -> bytes:
    """A sync and a header, as noise can forge one: any version, type, seq and length."""
    ver = draw(st.sampled_from([wire.VERSION, 0, 2, 0xFF]))
    plen = draw(st.one_of(st.integers(0, 64), st.integers(0, 0xFFFF), st.just(wire.MAX_PAYLOAD + 1)))
    return wire.SYNC + bytes([ver, draw(st.integers(0, 255))]) + draw(st.binary(min_size=2, max_size=2)) + \
        plen.to_bytes(2, "little")


garbage = st.lists(
    st.one_of(st.binary(max_size=12), st.just(wire.SYNC), st.just(b"\xa5"), st.just(b"\xa5\xa5\x4c"), fake_header()),
    max_size=4,
).map(b"".join)

# Chunk sizes, cycled over the stream: single bytes, odd sizes, empty feeds, all at once.
cuts = st.lists(st.integers(0, 80), max_size=8).filter(lambda c: not c or any(c))


@dataclass
class Stream:
    data: bytes
    sent: list[bytes]  # every whole frame written, in order (duplicates included)
    offsets: list[int]  # where each one starts in data


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    """Frames with garbage between them, some duplicated, some cut short, and a torn tail."""
    data = bytearray()
    sent: list[bytes] = []
    offsets: list[int] = []
    for _ in range(draw(st.integers(0, 12))):
        data += draw(garbage)
        kind = draw(st.sampled_from(["frame", "frame", "frame", "dup", "truncated"]))
        if kind == "dup" and sent:
            f = sent[-1]
        else:
            f = draw(frames)
        if kind == "truncated":
            data += f[: draw(st.integers(0, len(f) - 1))]
            continue
        offsets.append(len(data))
        sent.append(f)
        data += f
    data += draw(garbage)
    if draw(st.booleans()):  # the recording stops inside a frame
        f = draw(frames)
        data += f[: draw(st.integers(1, len(f) - 1))]
    return Stream(bytes(data), sent, offsets)


def no_chance_frames(data: bytes, offsets: list[int]) -> bool:
    """True unless noise happened to carry a good CRC (a frame not sent, 2^-16 per false sync)."""
    starts = set(offsets)
    return all(off in starts for off, _ in reference_decode(data).frames)


# -- properties -------------------------------------------------------------------------
@SETTINGS
@given(streams(), cuts)
@example(Stream(wire.frame(3, 1, bytes(wire.MAX_PAYLOAD)), [wire.frame(3, 1, bytes(wire.MAX_PAYLOAD))], [0]), [1])
def test_every_intact_frame_comes_out_in_order_and_nothing_else(s: Stream, chunk_sizes: list[int]) -> None:
    assume(no_chance_frames(s.data, s.offsets))
    got, d = decode_chunked(s.data, chunk_sizes)
    assert [encode(f) for f in got] == s.sent
    assert d.stats.frames == len(got)
    assert d.stats.bytes_in == len(s.data)
    assert d.pending == 0


@SETTINGS
@given(streams(), cuts)
def test_chunked_decoder_agrees_with_the_reference_receiver(s: Stream, chunk_sizes: list[int]) -> None:
    ref = reference_decode(s.data)
    got, d = decode_chunked(s.data, chunk_sizes)
    assert got == [f for _, f in ref.frames]
    assert d.stats == ref.stats
    # Every byte fed is accounted for: skipped or in a frame (another version is skipped byte by byte).
    framed = sum(len(f.payload) + wire.OVERHEAD for f in got)
    assert d.stats.bytes_in == d.stats.bytes_skipped + framed


@SETTINGS
@given(st.lists(frames, min_size=1, max_size=30), st.randoms(use_true_random=False), cuts)
def test_bit_flips_at_one_percent_never_yield_a_corrupt_frame(
        sent: list[bytes], rng: random.Random, chunk_sizes: list[int]) -> None:
    data = bytearray(b"".join(sent))
    bit = int(rng.expovariate(FLIP_P))  # gaps between flips: each bit flips with probability FLIP_P
    while bit < len(data) * 8:
        data[bit // 8] ^= 1 << (bit % 8)
        bit += 1 + int(rng.expovariate(FLIP_P))
    offsets, off = [], 0
    for f in sent:
        offsets.append(off)
        off += len(f)
    assume(no_chance_frames(bytes(data), offsets))
    got, d = decode_chunked(bytes(data), chunk_sizes)
    # Nothing comes out that was not sent, and each frame at most as often as sent.
    assert not Counter(encode(f) for f in got) - Counter(sent)
    # Every frame that survived the flips comes out, in order.
    intact = [f for f, o in zip(sent, offsets) if data[o : o + len(f)] == f]
    assert [encode(f) for f in got] == intact
    assert d.stats.bytes_in == len(data)


@SETTINGS
@given(frames, st.integers(2, 5), cuts)
def test_duplicated_frames_all_come_out(f: bytes, copies: int, chunk_sizes: list[int]) -> None:
    got, d = decode_chunked(f * copies, chunk_sizes)
    assert [encode(g) for g in got] == [f] * copies
    assert d.stats.bytes_skipped == 0 and d.stats.crc_errors == 0


@SETTINGS
@given(st.lists(frames, min_size=2, max_size=8), st.data())
def test_a_truncated_frame_never_swallows_the_frames_behind_it(sent: list[bytes], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(sent) - 1), label="cut frame")
    cut = data.draw(st.integers(1, len(sent[k]) - 1), label="bytes kept")
    stream = b"".join(sent[:k]) + sent[k][:cut] + b"".join(sent[k + 1 :])
    kept = sent[:k] + sent[k + 1 :]
    offsets = [0]
    for f in sent[:k] + [sent[k][:cut]] + sent[k + 1 :]:
        offsets.append(offsets[-1] + len(f))
    assume(no_chance_frames(stream, offsets[:k] + offsets[k + 1 : -1]))
    # Live: the stream goes on after the cut. Once the longest length a torn header can
    # claim has arrived, the bad CRC is found without finish() and the frames behind it come out.
    live = FrameDecoder()
    filler = wire.frame(wire.T_STATUS, 0, bytes(wire.MAX_PAYLOAD))
    got = live.feed(stream) + live.feed(filler)
    assert [encode(g) for g in got][: len(kept)] == kept
    # Recorded: the stream ends there; finish() recovers what the torn frame's length hid.
    rec, _ = decode_chunked(stream, data.draw(cuts, label="chunks"))
    assert [encode(g) for g in rec] == kept


# -- the fuzz harness, bounded ------------------------------------------------------------
FUZZ = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_decoder.py"


def run_fuzzer(tmp_path: Path, *flags: str, plant: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LEAKMON_FUZZ_PLANT=plant)
    return subprocess.run([sys.executable, str(FUZZ), *flags], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_fuzz_harness_bounded_run_breaks_no_invariant(tmp_path: Path) -> None:
    res = run_fuzzer(tmp_path, "-runs=6000", "-max_total_time=10", "-seed=1")
    assert res.returncode == 0, res.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*"))


def test_fuzz_harness_does_not_blame_the_decoder_for_a_chance_frame_of_another_version() -> None:
    """Issue: a chance good CRC on a forged header of another version swallowed the intact
    frame behind it, and the harness (which excused only version-1 chance frames) reported
    it. Such a frame is now given up one byte past its sync, so nothing is swallowed."""
    sys.path.insert(0, str(FUZZ.parent))
    import fuzz_decoder

    inner = wire.frame(wire.T_SAMPLES, 7, bytes(range(40)))
    forged = bytearray(wire.frame(wire.T_EVENT, 3, inner + b"tail"))
    forged[wire.OFF_VERSION] = 2
    c = wire.crc16(forged, 2, len(forged) - 2)
    forged[-2:] = bytes((c & 0xFF, c >> 8))
    data = bytes(forged) + inner
    fuzz_decoder.check_stream(data, [3], [(wire.HEADER_SIZE, inner), (len(forged), inner)])


def test_fuzz_harness_finds_a_planted_decoder_bug(tmp_path: Path) -> None:
    """The harness can fail: a decoder that abandons a bad frame at its claimed end is caught."""
    res = run_fuzzer(tmp_path, "-runs=50000", "-max_total_time=20", "-seed=1", plant="skip-bad-frame")
    out = res.stdout + res.stderr  # atheris prints the traceback on stdout
    assert res.returncode != 0 and "AssertionError" in out, out[-2000:]
    assert list(tmp_path.glob("crash-*"))
