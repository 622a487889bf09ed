"""Every command's pipeline against CRC-valid frames of every type with random
payloads (hypothesis): valid frames with wild field values, frames cut short or
padded, any type byte. Nothing may raise past the one-line error handler: each
command ends with exit status 0 or 1, never a traceback.

`replay`, `export`, `analyze` and `test` read recordings; `monitor` reads a
pseudo-terminal, as it reads a real port."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
import wiregen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leakmon import wire
from leakmon.cli import main as cli
from leakmon.link.recording import KIND_RX, RecordingWriter

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "hardware" / "recipes" / "part_0p5l.toml"

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
text = st.text(max_size=20)
channel = st.tuples(u8, st.sampled_from([0, 1, 3, 4, 5, 6, 7, 8, 9, 255]), u8, u8, u8, st.integers(0, 12))


@st.composite
def hello(draw: st.DrawFn) -> bytes:
    chans = draw(st.lists(channel, max_size=4))
    return wire.hello_payload(draw(text), draw(text), draw(st.integers(0, 40)), draw(u32), draw(u16), chans)


@st.composite
def samples(draw: st.DrawFn) -> bytes:
    chans = draw(st.lists(st.tuples(u8, st.integers(0, 12)), min_size=0, max_size=3))
    rows = draw(st.integers(0, 12))
    width = sum(size for _, size in chans)
    head = bytearray(wire.HEADER_SIZE + wire.SAMPLES_HEADER_SIZE + 2 * len(chans))
    wire.samples_begin(head, draw(u32), draw(u32), rows, chans)
    raw = draw(st.binary(min_size=rows * width, max_size=rows * width)) if rows * width <= 512 else b""
    return bytes(head[wire.HEADER_SIZE:]) + raw


payload_for = {
    wire.T_HELLO: hello(),
    wire.T_CALIB: st.builds(wire.calib_payload, u8, u8, st.binary(max_size=40)),
    wire.T_SAMPLES: samples(),
    wire.T_EVENT: st.builds(wire.event_payload, u32, u8, u8, i32, text),
    wire.T_ACK: st.builds(wire.ack_payload, u16, u8, u8, text),
    wire.T_STATUS: st.builds(wire.status_payload, u32, u32, u32, u32, u32, u32),
    wire.T_TIME: st.builds(wire.time_payload, u32, st.integers(0, (1 << 64) - 1)),
}


@st.composite
def frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([*payload_for, "any"]))
    if kind == "any":
        return wire.frame(draw(u8), draw(u16), draw(st.binary(max_size=64)))
    payload = draw(payload_for[kind])
    cut = draw(st.sampled_from(["whole", "short", "long"]))
    if cut == "short" and payload:
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    elif cut == "long":
        payload += draw(st.binary(min_size=1, max_size=16))
    return wire.frame(kind, draw(u16), payload)


# A real handshake and some samples first, so the frames after it reach every stage
# (compensation, the fit, the recipe), then the generated frames mixed with more samples.
streams = st.builds(lambda fs, tail: wiregen.capture(20) + b"".join(fs) + wiregen.samples(5, seq=40) + tail,
                    st.lists(frame(), min_size=1, max_size=12), st.binary(max_size=40))

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def run_cli(argv: list[str]) -> int:
    status = cli.main(argv)
    assert status in (0, 1, 3), (argv, status)  # 3: test's "not passed"
    return status


@SETTINGS
@given(data=streams)
def test_recording_commands_never_raise(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    d = tmp_path_factory.mktemp("rec")
    path = d / "r.lkr"
    with RecordingWriter(path, {"window_s": 30.0}) as w:
        for k in range(0, len(data), 700):
            w.write(data[k : k + 700], KIND_RX)
    run_cli(["replay", str(path), "--fast", "--json"])
    run_cli(["export", str(path), "-o", str(d / "r.csv")])
    run_cli(["analyze", str(path), "--json"])
    run_cli(["test", "--recipe", str(RECIPE), "--recording", str(path)])


def _serve(master: int, data: bytes, stop: threading.Event) -> None:
    """The 'node': answer nothing, just send the bytes (again and again) until stopped."""
    while not stop.is_set():
        try:
            os.write(master, data)
        except OSError:
            return
        time.sleep(0.2)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=streams)
def test_monitor_on_a_pty_never_raises(data: bytes) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    t = threading.Thread(target=_serve, args=(master, data, stop), daemon=True)
    t.start()
    try:
        r = subprocess.run([sys.executable, "-m", "leakmon", "monitor", "--port", os.ttyname(slave),
                            "--duration", "5", "--json"], capture_output=True, text=True, timeout=60)
    finally:
        stop.set()
        t.join(5)
        os.close(master)
        os.close(slave)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
