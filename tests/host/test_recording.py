"""Recordings: lossless round trips, crash safety, torn and foreign files, and the
replay/export commands on recordings built from synthetic node bytes."""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import serial
import wiregen
from leakmon import wire
from leakmon.analysis.tracker import LeakTracker
from leakmon.cli import main as cli
from leakmon.link import recording
from leakmon.link.node import Node
from leakmon.link.recording import (
    KIND_RX,
    KIND_TX,
    RecordingError,
    RecordingWriter,
    open_recording,
)
from blocks_table import table_from_blocks
from leakmon.wire.stream import NodeStream, SampleBlock, SampleTable


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def write(path: Path, chunks: list[tuple[int, bytes]], meta: dict | None = None) -> None:
    clock = FakeClock()
    with RecordingWriter(path, meta, clock=clock) as w:
        for kind, data in chunks:
            clock.t += 0.01
            w.write(data, kind)


def read(path: Path) -> tuple[list[recording.Chunk], recording.RecordingReader]:
    with open_recording(path) as r:
        return list(r.chunks()), r


def random_chunks(n: int, seed: int = 0) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    return [(rng.choice([KIND_RX, KIND_RX, KIND_TX]), rng.randbytes(rng.randrange(1, 300))) for _ in range(n)]


def test_round_trip_keeps_every_byte_kind_and_time(tmp_path):
    chunks = random_chunks(200)
    write(tmp_path / "r.lkr", chunks, {"source": "test"})
    got, r = read(tmp_path / "r.lkr")
    assert [(c.kind, c.data) for c in got] == chunks
    assert np.all(np.diff([c.t_s for c in got]) > 0)
    assert r.header.meta == {"source": "test"} and not r.truncated


def test_a_cut_anywhere_in_the_last_chunk_keeps_the_rest_and_reports_it(tmp_path):
    chunks = random_chunks(5, seed=1)
    path = tmp_path / "r.lkr"
    write(path, chunks)
    whole = path.read_bytes()
    last = len(whole) - (recording.CHUNK_HEAD + len(chunks[-1][1]) + recording.CRC_SIZE)
    for cut in range(last + 1, len(whole)):
        path.write_bytes(whole[:cut])
        got, r = read(path)
        assert [c.data for c in got] == [d for _, d in chunks[:-1]], cut
        assert r.truncated and r.tail_bytes == cut - last


def test_a_zero_filled_tail_is_a_truncation_not_corruption(tmp_path):
    path = tmp_path / "r.lkr"
    write(path, random_chunks(3, seed=2))
    path.write_bytes(path.read_bytes() + bytes(4096))
    got, r = read(path)
    assert len(got) == 3 and r.truncated and r.tail_bytes == 4096


def test_a_changed_byte_inside_the_file_is_named_not_skipped(tmp_path):
    path = tmp_path / "r.lkr"
    write(path, random_chunks(4, seed=3))
    with open_recording(path) as r:
        offsets = [c.offset for c in r.chunks()]
    data = bytearray(path.read_bytes())
    data[offsets[2] + recording.CHUNK_HEAD] ^= 0x10
    path.write_bytes(bytes(data))
    got, r = read(path)
    assert len(got) == 2 and r.damage is not None and f"corrupt chunk at byte {offsets[2]}" in r.damage
    with pytest.raises(RecordingError, match=f"corrupt chunk at byte {offsets[2]}"):
        recording.report_tail(r, warn=print)


@pytest.mark.parametrize("content, needle", [
    (b"", "not a leakmon recording"),
    (b"t_s,channel,pressure_pa\n1,0,101325\n", "not a leakmon recording"),
    (recording.MAGIC + b"\x01\x00", "header cut short"),
    (struct.pack(recording.HEADER_FMT, recording.MAGIC, 7, 0, 0.0, 0) + b"\0" * 4, "format v7"),
    (struct.pack(recording.HEADER_FMT, recording.MAGIC, 1, 0, 0.0, 0) + b"\0" * 4, "header (CRC mismatch)"),
])
def test_foreign_and_broken_files_get_one_clear_line_and_exit_1(tmp_path, capsys, content, needle):
    path = tmp_path / "x.lkr"
    path.write_bytes(content)
    for argv in (["replay", str(path), "--fast"], ["export", str(path), "-o", str(tmp_path / "o.csv")]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("leakmon: ") and needle in err[0], err


def test_a_missing_file_gets_one_clear_line(tmp_path, capsys):
    assert cli.main(["replay", str(tmp_path / "nope.lkr")]) == 1
    assert "cannot read" in capsys.readouterr().err


CRASH = """
import os, sys
from leakmon.link.recording import RecordingWriter
t = [0.0]
w = RecordingWriter(sys.argv[1], clock=lambda: t[0])
for k in range(40):
    t[0] = k * 0.1
    w.write(bytes([k]) * 10)
w.poll()
os._exit(9)  # a crash: no close, no flush, no atexit
"""


def test_a_crash_loses_at_most_the_last_flush_interval(tmp_path):
    path = tmp_path / "r.lkr"
    res = subprocess.run([sys.executable, "-c", CRASH, str(path)], capture_output=True, timeout=30)
    assert res.returncode == 9, res.stderr
    got, _ = read(path)
    crash_t = 3.9
    assert [c.data for c in got] == [bytes([k]) * 10 for k in range(len(got))]
    assert got[-1].t_s >= crash_t - 1.0  # the promise: a crash loses at most the last second


def test_poll_flushes_even_when_no_data_comes(tmp_path):
    clock = FakeClock()
    path = tmp_path / "r.lkr"
    w = RecordingWriter(path, clock=clock)
    w.write(b"abc")
    size = path.stat().st_size
    clock.t += recording.FLUSH_INTERVAL_S
    w.poll()
    assert path.stat().st_size == size + recording.CHUNK_HEAD + 3 + recording.CRC_SIZE
    w.close()


def test_node_taps_record_the_link_byte_for_byte_including_corruption(tmp_path):
    data = bytearray(wiregen.capture(300, seed=4))
    rng = random.Random(5)
    for i in rng.sample(range(200, len(data)), 15):
        data[i] ^= 1 << rng.randrange(8)
    data = b"\x00garbage\xa5" + bytes(data)
    port = serial.serial_for_url("loop://", timeout=0.01)
    node = Node(port)
    path = tmp_path / "r.lkr"
    with RecordingWriter(path) as w:
        node.rx_taps.append(w.write)
        for k in range(0, len(data), 1000):
            port.write(data[k : k + 1000])
            while port.in_waiting:
                node.read()
    with open_recording(path) as r:
        assert b"".join(c.data for c in r.rx_chunks()) == data
    live = node.stream
    replayed = NodeStream()
    with open_recording(path) as r:
        for _ in recording.play(r, replayed):
            pass
    assert replayed.decoder.stats.crc_errors == live.decoder.stats.crc_errors > 0
    assert replayed.stats.frames == live.stats.frames


def test_play_paces_chunks_at_the_requested_speed(tmp_path):
    path = tmp_path / "r.lkr"
    clock = FakeClock()
    with RecordingWriter(path, clock=clock) as w:
        for k in range(4):
            clock.t = 100.0 + k
            w.write(wiregen.handshake() if k == 0 else b"\x00")
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    with open_recording(path) as r:
        list(recording.play(r, NodeStream(), speed=2.0, sleep=sleep, clock=lambda: now[0]))
    assert slept == pytest.approx([0.5, 0.5, 0.5])


def synthetic_recording(path: Path, data: bytes, chunk: int = 500, meta: dict | None = None) -> None:
    write(path, [(KIND_RX, data[k : k + chunk]) for k in range(0, len(data), chunk)], meta)


def test_replay_prints_what_the_pipeline_computes_and_counts_crc_errors(tmp_path, capsys):
    data = bytearray(wiregen.capture(120, seed=6))
    data[2000] ^= 0x04  # inside a SAMPLES frame: one CRC error
    path = tmp_path / "r.lkr"
    synthetic_recording(path, bytes(data), meta={"window_s": 30.0})
    assert cli.main(["replay", str(path), "--fast", "--json"]) == 0
    out, err = capsys.readouterr()
    got = [json.loads(line) for line in out.splitlines()]
    s = NodeStream()
    tracker = LeakTracker(30.0)
    want = [u.as_dict() for b in s.feed(bytes(data)) if isinstance(b, SampleBlock) if (u := tracker.add(b))]
    assert got == want and len(got) > 100
    assert "1 CRC errors" in err and "synthetic" in err


def export_reference(data: bytes) -> SampleTable:
    s = NodeStream()
    return table_from_blocks([b for b in s.feed(data) + s.finish() if isinstance(b, SampleBlock)])


def test_export_csv_has_one_row_per_sample_per_channel_with_exact_values(tmp_path, capsys):
    data = wiregen.capture(50, channels=2, seed=7)
    path = tmp_path / "r.lkr"
    synthetic_recording(path, data)
    assert cli.main(["export", str(path), "--to", "csv", "-o", str(tmp_path / "o.csv")]) == 0
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == "t_s,channel,pressure_pa,temperature_k,seq"
    got = np.loadtxt(tmp_path / "o.csv", delimiter=",", skiprows=1)
    ref = export_reference(data)
    assert got.shape == (len(ref), 5) and len(ref) == 50 * 10 * 2
    for k, name in enumerate(("t_s", "channel", "pressure_pa", "temperature_k", "seq")):
        np.testing.assert_array_equal(got[:, k], getattr(ref, name).astype(np.float64))


def test_export_parquet_matches_the_stream(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    data = wiregen.capture(40, seed=8)
    path = tmp_path / "r.lkr"
    synthetic_recording(path, data)
    assert cli.main(["export", str(path), "--to", "parquet"]) == 0
    table = pq.read_table(tmp_path / "r.parquet")
    ref = export_reference(data)
    assert table.column_names == ["t_s", "channel", "pressure_pa", "temperature_k", "seq"]
    for name in table.column_names:
        np.testing.assert_array_equal(table[name].to_numpy(), getattr(ref, name))


def test_export_parquet_without_pyarrow_says_what_to_install(tmp_path, capsys, monkeypatch):
    path = tmp_path / "r.lkr"
    synthetic_recording(path, wiregen.capture(5))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert cli.main(["export", str(path), "--to", "parquet"]) == 1
    assert "pip install 'leakmon[parquet]'" in capsys.readouterr().err


def test_export_reports_a_truncated_recording_and_keeps_what_is_whole(tmp_path, capsys):
    data = wiregen.capture(30, seed=9)
    path = tmp_path / "r.lkr"
    synthetic_recording(path, data, chunk=len(data) // 2 + 1)
    path.write_bytes(path.read_bytes()[:-10])
    assert cli.main(["export", str(path), "-o", "-"]) == 0
    out, err = capsys.readouterr()
    assert "cut-short chunk" in err
    assert len(out.splitlines()) - 1 == len(export_reference(data[: len(data) // 2 + 1]))


def test_export_progress_respects_no_color(monkeypatch):
    import io

    from leakmon.cli.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for no_color, has_escape in ((True, False), (False, True)):
        if no_color:
            monkeypatch.setenv("NO_COLOR", "1")
        else:
            monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "xterm")
        s = Tty()
        p = Progress(100 << 20, "exporting", s)
        p.update(50 << 20)
        assert "50%" in s.getvalue() and ("\x1b[" in s.getvalue()) == has_escape


def test_replay_and_export_drop_a_frame_torn_by_a_reconnect_as_the_live_run_did(tmp_path):
    from leakmon.link.recording import decode_recording

    before = wiregen.capture(20, seed=10)
    after = wiregen.samples(20, seq=40, t0_us=40_000_000, seed=11)
    torn = after[:30]  # the first bytes of a frame, then the port vanished
    path = tmp_path / "r.lkr"
    clock = FakeClock()
    with RecordingWriter(path, clock=clock) as w:
        w.write(before + torn)
        w.note("link-lost", error="gone")
        w.note("reconnected")
        w.write(after)
    live = NodeStream()
    items = live.feed(before + torn)
    live.decoder.drop_pending()
    items += live.feed(after) + live.finish()
    want = table_from_blocks([b for b in items if isinstance(b, SampleBlock)])
    replayed = NodeStream()
    with open_recording(path) as r:
        got = [b for batch in recording.play(r, replayed) for b in batch if isinstance(b, SampleBlock)]
    with open_recording(path) as r:
        exported = SampleTable.concat(list(decode_recording(r)))
    for name in SampleTable.__slots__:
        np.testing.assert_array_equal(getattr(table_from_blocks(got), name), getattr(want, name))
        np.testing.assert_array_equal(getattr(exported, name), getattr(want, name))
    assert len(want) == 400 and replayed.decoder.stats == live.decoder.stats


@pytest.mark.parametrize("command", [["export", "-o", "-"], ["replay", "--fast"], ["analyze"]])
def test_impossible_frames_with_good_crcs_are_counted_by_every_command_never_raised(tmp_path, capsys, command):
    """A CRC-valid SAMPLES frame of 12 rows of 5 bytes for a BMP390 (6-byte samples), a HELLO
    with a sample period of 0, a CALIB of an unknown chip: malformed, and the rest decoded."""
    chans = [(0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x77, 6)]
    bad = [wire.frame(wire.T_SAMPLES, 3, wire.samples_payload(0, 100000, [(0, 5)], [bytes(5)] * 12)),
           wire.frame(wire.T_HELLO, 4, wire.hello_payload("x", "b", 30, 0, 10, chans)),
           wire.frame(wire.T_CALIB, 5, wire.calib_payload(0, 0x63, bytes(21)))]
    data = wiregen.handshake(seq=0) + b"".join(bad) + wiregen.samples(300, seq=6)
    path = tmp_path / "r.lkr"
    synthetic_recording(path, data)
    assert cli.main([command[0], str(path), *command[1:]]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if command[0] == "export":
        assert len(out.splitlines()) == 1 + 300 * 10
