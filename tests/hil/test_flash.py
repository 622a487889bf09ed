"""`leakmon flash` against a virtual board with an empty flash folder, checked
with the real mpremote; and the errors a user meets, one line each."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from leakmon import wire
from leakmon.deploy import flash
from leakmon.deploy.rawrepl import NotAtReplError
from leakmon.firmware import firmware_files
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.wire.stream import SampleBlock

pytestmark = pytest.mark.hil
LEAKMON = [sys.executable, "-m", "leakmon"]
MPREMOTE = [sys.executable, "-m", "mpremote"]


def leakmon(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LEAKMON + list(args), capture_output=True, text=True, timeout=timeout)


def mpremote(port: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Generous: on a loaded 2-core machine a soft reboot of the virtual board takes seconds.
    return subprocess.run(MPREMOTE + ["connect", port, *args], capture_output=True, text=True, timeout=60)


def test_flash_an_empty_board_then_reflash_copies_nothing(micropython, tmp_path):
    flash_dir = tmp_path / "flash"
    with VirtualBoard(scenario.load("steady_leak"), speed=10, flash_dir=flash_dir, install_firmware=False) as board:
        assert sorted(p.name for p in flash_dir.iterdir()) == ["sim.json"]
        res = leakmon("flash", "--port", board.port, "--board", "sim")
        assert res.returncode == 0, res.stderr
        expected = {f.name if f.name in ("main.py", "config.json") else f.stem + ".mpy" for f in firmware_files()}
        assert res.stderr.count(" B  copied") == len(expected), res.stderr
        assert "node sim firmware" in res.stderr and "Traceback" not in res.stderr

        # It boots and streams: handshake, then samples.
        with Node.open(board.port) as node:
            hello = node.handshake()
            assert hello.fw_version == flash.expected_fw_version() and hello.proto_major == wire.VERSION
            got: list[SampleBlock] = []
            deadline = time.monotonic() + 10
            while len(got) < 3 and time.monotonic() < deadline:
                got += [i for i in node.read() if isinstance(i, SampleBlock)]
            assert len(got) >= 3
            assert node.command(wire.C_REPL).ok  # the node leaves: the REPL is free for mpremote

        # The real mpremote sees what we wrote, byte for byte.
        ls = mpremote(board.port, "fs", "ls")
        assert ls.returncode == 0, ls.stderr
        assert expected | {"sim.json"} <= set(ls.stdout.split()), ls.stdout
        cat = mpremote(board.port, "fs", "cat", "config.json")
        assert cat.stdout.strip() == next(f for f in firmware_files() if f.name == "config.json").read_text().strip()
        for name in expected:
            assert (flash_dir / name).exists(), name
        main = (flash_dir / "main.py").read_bytes()
        assert hashlib.sha256(main).hexdigest() == hashlib.sha256(
            next(f for f in firmware_files() if f.name == "main.py").read_bytes()).hexdigest()

        # Again: nothing changed, nothing copied; and the node comes back up.
        res = leakmon("flash", "--port", board.port)
        assert res.returncode == 0, res.stderr
        assert " B  copied" not in res.stderr and "0 copied" in res.stderr, res.stderr
        assert res.stderr.count(" B  unchanged") == len(expected)
        assert "is running" in res.stderr


def test_sources_when_the_board_loads_another_mpy_version(monkeypatch):
    notes: list[str] = []
    monkeypatch.setattr(flash, "mpy_cross_version", lambda exe: 6)
    arts = flash.build(5, "auto", None, notes.append)
    assert all(a.name.endswith((".py", ".json")) for a in arts)
    assert notes and ".mpy version mismatch (board v5, mpy-cross v6)" in notes[0]
    with pytest.raises(flash.FlashError, match=".mpy version mismatch"):
        flash.build(5, "always", None, notes.append)
    assert any(a.name == "app.mpy" for a in flash.build(6, "auto", b"{}", notes.append))


class FakeRepl:
    """Answers the hash query with 'no such file' for every name."""

    def exec(self, code: str, timeout_s: float = 10.0) -> bytes:
        names = ast.literal_eval(code.rsplit("for p in ", 1)[1].rsplit("]))", 1)[0])
        return repr([None] * len(names)).encode()


def test_flash_full_is_one_clear_error():
    arts = [flash.Artifact("app.py", b"x" * 5000)]
    info = flash.BoardInfo("rp2", 6, 1000, ())
    with pytest.raises(flash.FlashError, match="flash full: 5000 bytes to write, 1000 free"):
        flash._copy(FakeRepl(), arts, info, lambda s: None)  # type: ignore[arg-type]


def test_no_board_and_several_boards(monkeypatch):
    from serial.tools import list_ports

    def port(dev: str, vid: int | None, pid: int | None) -> SimpleNamespace:
        return SimpleNamespace(device=dev, vid=vid, pid=pid)

    monkeypatch.setattr(list_ports, "comports", lambda: [port("/dev/ttyS0", None, None)])
    with pytest.raises(flash.TransportError, match=r"no board found .*2e8a Raspberry Pi.*/dev/ttyS0 \(no USB id\)"):
        flash.find_port()
    monkeypatch.setattr(list_ports, "comports", lambda: [port("/dev/ttyACM0", 0x2E8A, 5), port("/dev/ttyACM1", 0x303A, 0x1001)])
    with pytest.raises(flash.TransportError, match="several boards: /dev/ttyACM0 .2e8a:0005., /dev/ttyACM1"):
        flash.find_port()
    assert flash.find_port(flash.board_profile("pico")) == "/dev/ttyACM0"


def test_user_errors_are_one_line(micropython, tmp_path):
    with VirtualBoard(scenario.load("steady_leak"), speed=5) as board:
        with Node.open(board.port):  # another program holds the port
            res = leakmon("flash", "--port", board.port)
        assert res.returncode == 1 and "is busy" in res.stderr and "Traceback" not in res.stderr
        res = leakmon("flash", "--port", board.port, "--board", "pico")
        assert res.returncode == 1 and "is a linux board, not pico" in res.stderr, res.stderr
    res = leakmon("flash", "--board", "nope")
    assert res.returncode == 1 and "no board 'nope'" in res.stderr
    res = leakmon("flash", "--port", str(tmp_path / "missing"))
    assert res.returncode == 1 and "cannot open" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 2  # "flashing ..." and the error


def test_a_silent_port_is_not_a_repl():
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with pytest.raises(NotAtReplError, match="is not at a REPL"):
            flash.deploy(os.ttyname(slave), repl_timeout_s=0.3)
    finally:
        os.close(master)
        os.close(slave)


def test_main_py_leaves_first_and_comes_back_last(micropython, tmp_path):
    """An update that changes modules: main.py (what starts the node) is off the board
    while they change, and goes back only after every other file is verified."""
    with VirtualBoard(scenario.load("steady_leak"), speed=20) as board:  # .py firmware installed
        notes: list[str] = []
        report = flash.deploy(board.port, flash.board_profile("sim"), progress=notes.append)
        assert report.hello is not None
    steps = [n.split()[0] + (" removed" if "removed" in n else " copied" if " B  copied" in n else "")
             for n in notes if "removed" in n or " B  copied" in n or n.startswith("verified")]
    assert steps[0] == "main.py removed", steps
    assert steps[-2:] == ["main.py copied", "verified"], steps
    assert "app.mpy copied" in steps and "app.py removed" in steps  # the twin goes before main.py is back
    assert report.copied[-1] == "main.py" and report.removed[0] == "main.py"
