"""Coverage-guided fuzzing of the host's frame decoder and stream core (atheris/libFuzzer).

Each input is used twice: as raw bytes on the wire, and as a little script that
builds a stream (good frames, garbage, cut-short frames, bit flips, forged headers,
chunk sizes), so that the fuzzer reaches the good-CRC paths that random bytes never
hit. Invariants checked on every input (any violation raises, and libFuzzer saves
the input as a crash-* file):

- fed in chunks then finish()ed, the decoder agrees frame for frame and counter for
  counter with a reference receiver written from PROTOCOL.md;
- every byte fed is accounted for (skipped or in a frame: a frame of another version
  is given up one byte past its sync, like a bad CRC, see PROTOCOL.md);
- every frame the script wrote and no flip touched comes out, in order, and nothing
  else (unless noise carried a chance good CRC with this version: 2^-16 per false
  sync, not a bug; one of another version hides nothing, so it is never excused);
- the stream core (NodeStream) fed the same chunks never raises, and counts as the
  decoder does.

    .venv/bin/python fuzz/fuzz_decoder.py -max_total_time=3600 fuzz/corpus   # see fuzz/README.md
    .venv/bin/python fuzz/fuzz_decoder.py --engine simple -runs=100000       # without atheris

--engine simple is a small mutation fuzzer (no coverage feedback) used when atheris
does not install. LEAKMON_FUZZ_PLANT=<name> swaps in a decoder with a planted bug,
to show that the harness finds one.
"""

from __future__ import annotations

import inspect
import os
import random
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import atheris
except ImportError:  # the simple engine needs nothing
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["leakmon"]):
        from leakmon import wire
        from leakmon.wire import scan
        from leakmon.wire.framing import Frame, FrameDecoder
        from leakmon.wire.stream import NodeStream
else:
    from leakmon import wire
    from leakmon.wire import scan
    from leakmon.wire.framing import Frame, FrameDecoder
    from leakmon.wire.stream import NodeStream

# The reference receiver lives beside the property tests that share it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "property"))
from reference_receiver import reference_decode  # noqa: E402


# -- building a stream from an input -----------------------------------------------------
@dataclass
class Case:
    stream: bytes
    sent: list[tuple[int, bytes]]  # (offset, frame) of every whole frame written
    cuts: list[int]  # chunk sizes, cycled (0 = an empty feed)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def byte(self) -> int:
        b = self.data[self.i] if self.i < len(self.data) else 0
        self.i += 1
        return b

    def take(self, n: int) -> bytes:
        out = self.data[self.i : self.i + n]
        self.i += n
        return out + bytes(n - len(out))

    @property
    def more(self) -> bool:
        return self.i < len(self.data)


def build(data: bytes) -> Case:
    """Interpret data as: chunk sizes, then ops (garbage, frame, cut frame, flip, forged header)."""
    r = _Reader(data)
    cuts = [r.byte() % 97 for _ in range(r.byte() % 5)]
    if not any(cuts):
        cuts = []  # empty feeds only would never get through the stream
    stream = bytearray()
    sent: list[tuple[int, bytes]] = []
    while r.more:
        op = r.byte() % 6
        if op == 0:  # garbage
            stream += r.take(r.byte() % 40)
        elif op in (1, 2):  # a frame, whole or cut short
            t, seq = r.byte(), r.byte() | r.byte() << 8
            size = r.byte()
            plen = size if size < 250 else wire.MAX_PAYLOAD - 255 + size  # reach the 1024 limit too
            f = wire.frame(t, seq, r.take(plen))
            if op == 2:
                stream += f[: 1 + r.byte() % (len(f) - 1)]
            else:
                sent.append((len(stream), f))
                stream += f
        elif op == 3 and stream:  # flip a bit somewhere before
            pos = (r.byte() | r.byte() << 8) % len(stream)
            stream[pos] ^= 1 << (r.byte() % 8)
        elif op == 4:  # a forged header: any version and length
            stream += wire.SYNC + bytes((r.byte() % 3, r.byte())) + r.take(2) + r.take(2)
        elif op == 5 and sent:  # the last frame again
            sent.append((len(stream), sent[-1][1]))
            stream += sent[-1][1]
    return Case(bytes(stream), sent, cuts)


# -- the invariants -----------------------------------------------------------------------
def decode_chunked(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[Frame]:
    got: list[Frame] = []
    pos, k = 0, 0
    while pos < len(data):
        size = cuts[k % len(cuts)] if cuts else len(data)
        got += decoder.feed(data[pos : pos + size])
        pos += size
        k += 1
    return got + decoder.finish()


def check_stream(data: bytes, cuts: list[int], sent: list[tuple[int, bytes]] | None,
                 make: Callable[[], FrameDecoder] = FrameDecoder) -> None:
    ref = reference_decode(data)
    d = make()
    got = decode_chunked(d, data, cuts)
    want = [f for _, f in ref.frames]
    if got != want:
        raise AssertionError(f"decoder gave {len(got)} frames, the reference {len(want)}: {got[:3]} vs {want[:3]}")
    if d.stats != ref.stats:
        raise AssertionError(f"counters {d.stats} != reference {ref.stats}")
    framed = sum(len(f.payload) + wire.OVERHEAD for f in got)
    if d.stats.bytes_in != len(data) or d.stats.bytes_in != d.stats.bytes_skipped + framed:
        raise AssertionError(f"bytes not accounted for: {d.stats}, {framed} in frames")
    if d.pending:
        raise AssertionError(f"{d.pending} bytes still pending after finish()")
    core = NodeStream(make())
    pos, k = 0, 0
    while pos < len(data):  # the same chunks through the stream core: it must not raise
        size = cuts[k % len(cuts)] if cuts else len(data)
        core.feed(data[pos : pos + size])
        pos, k = pos + size, k + 1
    core.finish()
    if core.decoder.stats != ref.stats or core.stats.frames != len(got):
        raise AssertionError(f"stream core counted {core.decoder.stats}, {core.stats}; reference {ref.stats}")
    if sent is None:
        return
    starts = {off for off, _ in sent}
    if any(off not in starts for off, _ in ref.frames):
        return  # noise carried a good CRC and this version: a frame nobody sent, by chance (2^-16 per false sync)
    intact = [f for off, f in sent if data[off : off + len(f)] == f]
    out = [wire.frame(f.msg_type, f.seq, f.payload) for f in got]
    if out != intact:
        raise AssertionError(f"{len(out)} frames out, {len(intact)} intact frames sent")


def planted(name: str) -> Callable[[], FrameDecoder]:
    """A decoder with a known bug, to prove the harness finds one (LEAKMON_FUZZ_PLANT)."""
    if name == "skip-bad-frame":
        # Abandons a frame that fails at its claimed end, not one byte past its sync: a
        # stray sync in noise then swallows the good frame behind it.
        src = textwrap.dedent(inspect.getsource(scan._find_general))
        right = "    chained = ok  #"
        if right not in src:
            raise SystemExit("fuzz_decoder: cannot plant the bug: scan._find_general has changed")
        ns: dict[str, object] = dict(vars(scan))
        exec(src.replace(right, "    chained = complete  #", 1), ns)
        scan._find_general = ns["_find_general"]  # type: ignore[assignment]
        return FrameDecoder

    class NoFinish(FrameDecoder):
        """Never recovers the frames hidden behind a torn frame at the end."""

        def finish(self) -> list[Frame]:
            self.drop_pending()
            return []

    if name != "no-finish":
        raise SystemExit(f"fuzz_decoder: no planted bug {name!r} (have: skip-bad-frame, no-finish)")
    return NoFinish


MAKE: Callable[[], FrameDecoder] = planted(os.environ["LEAKMON_FUZZ_PLANT"]) \
    if os.environ.get("LEAKMON_FUZZ_PLANT") else FrameDecoder


def test_one_input(data: bytes) -> None:
    """The fuzz target: data as raw wire bytes, then as a stream-building script."""
    check_stream(data, [1 + data[0] % 64] if data else [], None, MAKE)
    case = build(data)
    check_stream(case.stream, case.cuts, case.sent, MAKE)


# -- engines ------------------------------------------------------------------------------
def _seeds() -> list[bytes]:
    f = wire.frame(wire.T_SAMPLES, 7, bytes(range(40)))
    return [b"", f, b"\x00" + bytes([1, 3, 7, 0, 40]) + bytes(40) + bytes([0, 5]) + b"garbage" + bytes([2, 5, 1, 0, 9])]


def simple_fuzz(runs: int, max_total_time: float, seed: int) -> int:
    """A mutation fuzzer without coverage feedback: flip, insert, delete, splice, repeat."""
    rng = random.Random(seed)
    corpus = _seeds()
    t_end = time.monotonic() + max_total_time if max_total_time else float("inf")
    n = 0
    while (not runs or n < runs) and time.monotonic() < t_end:
        data = bytearray(rng.choice(corpus))
        for _ in range(1 + rng.randrange(8)):
            op = rng.randrange(5)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[pos % len(data)] ^= 1 << rng.randrange(8)
            elif op == 1:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
            elif op == 2 and data:
                del data[pos : pos + rng.randrange(1, 16)]
            elif op == 3:
                other = rng.choice(corpus)
                data[pos:pos] = other[rng.randrange(len(other) + 1) :]
            else:
                data[pos:pos] = rng.choice([wire.SYNC, b"\xa5", bytes([1, 1, 0, 0, 0, 4])])
        data = data[:4096]
        try:
            test_one_input(bytes(data))
        except Exception:
            path = f"crash-simple-{n}"
            with open(path, "wb") as f:
                f.write(data)
            print(f"fuzz_decoder: invariant broken after {n} runs; input saved to {path}", file=sys.stderr)
            raise
        if rng.random() < 0.05 and len(corpus) < 500:
            corpus.append(bytes(data))
        n += 1
    print(f"fuzz_decoder: simple engine, {n} runs, no invariant broken", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    engine = "atheris" if atheris is not None else "simple"
    if "--engine" in argv:
        k = argv.index("--engine")
        engine = argv[k + 1]
        del argv[k : k + 2]
    if engine == "atheris":
        if atheris is None:
            raise SystemExit("fuzz_decoder: atheris is not installed (pip install atheris, or --engine simple)")
        atheris.Setup([sys.argv[0], *argv], test_one_input)
        atheris.Fuzz()  # exits the process
        return 0
    flags = dict(a.lstrip("-").split("=", 1) for a in argv if a.startswith("-") and "=" in a)
    return simple_fuzz(int(flags.get("runs", 0)), float(flags.get("max_total_time", 0) or 0),
                       int(flags.get("seed", 1)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
