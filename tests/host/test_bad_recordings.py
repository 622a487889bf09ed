"""What outside input did to the recording commands (issue: reliability, round two):
garbage appended to a file, a torn tail, a full disk. Each gets one line, the right
exit status, and loses nothing that was readable."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import wiregen
from leakmon.cli import main as cli
from leakmon.link.recording import KIND_RX, RecordingWriter

# More than one decode step (1 MiB) of node bytes, so a buffered step is at stake.
FRAMES = 30_000


def record(path: Path, data: bytes, chunk: int = 4096) -> None:
    with RecordingWriter(path, {"window_s": 60.0}) as w:
        for k in range(0, len(data), chunk):
            w.write(data[k : k + chunk], KIND_RX)


def csv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


def test_garbage_appended_costs_nothing_before_it(tmp_path, capsys):
    clean = tmp_path / "clean.lkr"
    record(clean, wiregen.capture(FRAMES, seed=3))
    damaged = tmp_path / "damaged.lkr"
    damaged.write_bytes(clean.read_bytes() + os.urandom(500))

    assert cli.main(["export", str(clean), "-o", str(tmp_path / "clean.csv")]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(damaged), "-o", str(tmp_path / "damaged.csv")]) == 1
    err = capsys.readouterr().err
    assert csv_rows(tmp_path / "damaged.csv") == csv_rows(tmp_path / "clean.csv")
    assert len(csv_rows(tmp_path / "clean.csv")) == FRAMES * 10
    assert "corrupt chunk at byte" in err and "Traceback" not in err

    assert cli.main(["analyze", str(clean), "--json"]) == 0
    clean_out = capsys.readouterr().out
    assert cli.main(["analyze", str(damaged), "--json"]) == 1
    out_err = capsys.readouterr()
    assert out_err.out == clean_out and json.loads(clean_out.splitlines()[0])["channel"] == 0
    assert out_err.err.strip().splitlines()[-1].startswith("leakmon: ") and "corrupt chunk" in out_err.err


def test_a_torn_tail_is_reported_by_analyze(tmp_path, capsys):
    path = tmp_path / "torn.lkr"
    record(path, wiregen.capture(300, seed=4))
    path.write_bytes(path.read_bytes()[:-100])  # a crash mid-write
    assert cli.main(["analyze", str(path), "--json"]) == 0
    err = capsys.readouterr().err
    assert "cut-short chunk" in err


def _fsize_limit(limit_bytes: int):
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
    return pre


def test_a_full_disk_during_record_is_one_line_and_the_file_replays(tmp_path, micropython):
    """The file-size limit stands in for a full disk: the write fails mid-recording."""
    out = tmp_path / "full.lkr"
    leakmon = Path(sys.executable).with_name("leakmon")
    r = subprocess.run([str(leakmon), "record", "--sim", "--speed", "0", "--duration", "100000", "-q",
                        "-o", str(out)], preexec_fn=_fsize_limit(60_000), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "cannot write" in ln]
    assert len(lines) == 1 and lines[0].startswith("leakmon: "), r.stderr
    assert out.stat().st_size == 60_000
    rp = subprocess.run([str(leakmon), "replay", "--fast", str(out)], capture_output=True, text=True, timeout=120)
    assert rp.returncode == 0, rp.stderr
    assert len(rp.stdout.splitlines()) > 100  # a header and an update per frame, up to the last flush
