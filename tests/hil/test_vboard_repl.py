"""The virtual board answers like a board on a serial port: the real mpremote
(unmodified, as a subprocess) works against it, also while the leakmon firmware
streams; soft reset runs boot.py then main.py, Ctrl-C interrupts main.py,
`fs ls` gives sizes as a board's filesystem does, `leakmon sim` serves it until
Ctrl-C."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import serial
from leakmon import wire
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.wire.stream import SampleBlock

pytestmark = pytest.mark.hil
MPREMOTE = [sys.executable, "-m", "mpremote"]
LEAKMON = [sys.executable, "-m", "leakmon"]
TICKER = "import time\nprint('main started')\nfor i in range(100000):\n    print('tick', i)\n    time.sleep(0.05)\n"


def mpremote(port: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(MPREMOTE + ["connect", port, *args], capture_output=True, text=True, timeout=timeout)


def read_until(port: serial.Serial, needle: bytes, timeout_s: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout_s
    while needle not in data and time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    assert needle in data, f"{needle!r} not in {data[-300:]!r}"
    return data


@pytest.fixture
def board(micropython, tmp_path):
    """A board whose flash holds a boot.py and a main.py that ticks forever."""
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "boot.py").write_text("print('boot ran')\n")
    (flash / "main.py").write_text(TICKER)
    with VirtualBoard(scenario.load("steady_leak"), flash_dir=flash) as b:
        yield b


def test_mpremote_fs_exec_run_and_soft_reset(board, tmp_path):
    local = tmp_path / "hello.txt"
    local.write_bytes(bytes(range(256)) * 8)  # every byte value goes through both ptys
    res = mpremote(board.port, "fs", "cp", str(local), ":hello.txt")
    assert res.returncode == 0, res.stderr
    assert (board.flash_dir / "hello.txt").read_bytes() == local.read_bytes()
    res = mpremote(board.port, "fs", "ls")
    assert res.returncode == 0, res.stderr
    assert {"boot.py", "main.py", "hello.txt", "sim.json"} <= set(res.stdout.split())
    res = mpremote(board.port, "fs", "cat", "boot.py")
    assert res.stdout == "print('boot ran')\n", res.stderr
    res = mpremote(board.port, "exec", "import sys; print(sys.platform, 6 * 7)")
    assert res.stdout.split() == ["linux", "42"], res.stderr
    script = tmp_path / "script.py"
    script.write_text("import os\nprint('cwd', os.getcwd())\n")
    res = mpremote(board.port, "run", str(script))
    assert res.stdout.strip() == f"cwd {board.flash_dir}", res.stderr
    res = mpremote(board.port, "soft-reset")
    assert res.returncode == 0, res.stderr
    res = mpremote(board.port, "exec", "raise ValueError('on the board')")
    assert res.returncode == 1 and "ValueError: on the board" in res.stdout + res.stderr


def test_boot_runs_boot_then_main_and_ctrl_c_interrupts_main(board):
    with serial.Serial(board.port, timeout=0.05) as port:
        read_until(port, b"tick")
        port.write(b"\x03")
        out = read_until(port, b">>> ")
        assert b"KeyboardInterrupt" in out
        port.write(b"6*7\r")
        assert b"42" in read_until(port, b">>> ")
        port.write(b"\x04")  # Ctrl-D at the normal REPL: soft reset, boot.py, main.py
        out = read_until(port, b"tick 3")
        assert out.index(b"MPY: soft reboot\r\n") < out.index(b"boot ran") < out.index(b"main started")
    assert board.poll() is None


def test_soft_reset_in_raw_repl_stays_raw_and_skips_main(board):
    with serial.Serial(board.port, timeout=0.05) as port:
        read_until(port, b"tick")
        port.write(b"\r\x03")
        read_until(port, b">>> ")
        port.write(b"\x01")
        read_until(port, b"raw REPL; CTRL-B to exit\r\n>")
        port.write(b"\x04")
        out = read_until(port, b"raw REPL; CTRL-B to exit\r\n>")
        assert b"soft reboot\r\n" in out and b"boot ran" in out and b"main started" not in out
        port.write(b"print(1 + 1)\x04")
        assert read_until(port, b"\x04>").startswith(b"OK2")


def ls_sizes(stdout: str) -> dict[str, int]:
    """`mpremote fs ls` lines ("   1234 name") as {name: size}."""
    out = {}
    for line in stdout.splitlines()[1:]:  # the first line names the folder
        size, _, name = line.strip().partition(" ")
        if size.isdigit():
            out[name] = int(size)
    return out


def test_mpremote_on_a_running_node(micropython, tmp_path):
    """The leakmon firmware streams (Ctrl-C stays on): mpremote's fs ls, cp and exec
    work with no leakmon step first, and a reset brings the node back."""
    with VirtualBoard(scenario.load("steady_leak"), speed=10) as b:  # the firmware installed
        with Node.open(b.port) as node:
            assert node.handshake().board == "sim"
            assert any(isinstance(i, SampleBlock) for _ in range(40) for i in node.read())
        res = mpremote(b.port, "fs", "ls")
        assert res.returncode == 0, res.stderr
        sizes = ls_sizes(res.stdout)
        files = {f.name: f.stat().st_size for f in b.flash_dir.iterdir() if f.is_file()}
        assert sizes == files and sizes["app.py"] > 1000  # sizes as the board's files have them
        local = tmp_path / "note.txt"
        local.write_bytes(bytes(range(256)) * 4)
        res = mpremote(b.port, "fs", "cp", str(local), ":note.txt")
        assert res.returncode == 0, res.stderr
        assert (b.flash_dir / "note.txt").read_bytes() == local.read_bytes()
        res = mpremote(b.port, "exec", "import os; print(os.stat('note.txt')[6], 6 * 7)")
        assert res.stdout.split() == ["1024", "42"], res.stderr
        res = mpremote(b.port, "reset")  # a hard reset: main.py runs the firmware again
        assert res.returncode == 0, res.stderr
        with Node.open(b.port) as node:
            assert node.handshake(timeout_s=10).board == "sim"


def test_ctrl_c_stops_the_streaming_firmware(micropython):
    with VirtualBoard(scenario.load("steady_leak"), speed=10) as b:
        with serial.Serial(b.port, timeout=0.05) as port:
            read_until(port, wire.SYNC)
            port.write(b"\x03")
            out = read_until(port, b">>> ")
            assert b"KeyboardInterrupt" in out
            port.write(b"print(6 * 7)\r")
            assert b"42" in read_until(port, b">>> ")
        assert b.poll() == 2  # main.py interrupted; the board (its supervisor) still runs
        assert b.running()


def test_fs_ls_sizes_of_files_and_folders(board):
    (board.flash_dir / "data").mkdir()
    (board.flash_dir / "data" / "log.bin").write_bytes(bytes(300))
    res = mpremote(board.port, "fs", "ls", "data")
    assert res.returncode == 0, res.stderr
    assert ls_sizes(res.stdout) == {"log.bin": 300}
    res = mpremote(board.port, "fs", "ls")
    assert ls_sizes(res.stdout)["data/"] == 0 and ls_sizes(res.stdout)["boot.py"] == len("print('boot ran')\n")


def test_mpremote_repl_session(board):
    master, slave = os.openpty()  # mpremote's console wants a terminal
    proc = subprocess.Popen(MPREMOTE + ["connect", board.port, "repl"], stdin=slave, stdout=slave, stderr=slave)
    try:
        out = b""

        def expect(needle: bytes, timeout_s: float = 10.0) -> None:
            nonlocal out
            deadline = time.monotonic() + timeout_s
            while needle not in out and time.monotonic() < deadline:
                if select.select([master], [], [], 0.1)[0]:
                    out += os.read(master, 4096)
            assert needle in out, out[-400:]

        expect(b"to exit this shell")
        deadline = time.monotonic() + 5
        while termios.tcgetattr(slave)[3] & termios.ISIG and time.monotonic() < deadline:
            time.sleep(0.02)  # until mpremote's console has made its terminal raw
        for _ in range(3):  # as a person would: once more if the console was not reading yet
            os.write(master, b"\x03")
            try:
                expect(b">>> ", timeout_s=4.0)
                break
            except AssertionError:
                continue
        expect(b">>> ")
        os.write(master, b"print(6 * 7)\r")
        expect(b"42")
        os.write(master, b"\x1d")  # Ctrl-]: leave mpremote
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)


def test_reset_and_disconnect_faults(board, tmp_path):
    link = tmp_path / "dev"
    flash = board.flash_dir
    board.close()
    with VirtualBoard(scenario.load("steady_leak"), flash_dir=flash, link=link) as b:
        first = b.port
        assert Path(os.readlink(link)) == Path(first)
        b.control("reset")
        deadline = time.monotonic() + 5
        while b.boots < 2 and time.monotonic() < deadline:
            b.poll()
            time.sleep(0.05)
        assert b.boots == 2
        with serial.Serial(first, timeout=0.05) as old:
            read_until(old, b"tick")
            b.control("disconnect 0.3")  # the cable pulled: the open port dies
            # Which call meets the dead port decides the exception: pyserial's own, or
            # EIO straight from its in_waiting ioctl (leakmon.link.node maps both to TransportError).
            with pytest.raises((serial.SerialException, OSError)):
                read_until(old, b"never", timeout_s=3)
        seen: list[str] = []
        deadline = time.monotonic() + 5
        while "port" not in " ".join(seen[seen.index("disconnected"):] if "disconnected" in seen else []) \
                and time.monotonic() < deadline:
            seen += b.events()
            time.sleep(0.05)
        assert seen[-1] == f"port {b.port}" and Path(os.readlink(link)) == Path(b.port)
        with serial.Serial(str(link), timeout=0.05) as port:  # and it comes back
            read_until(port, b"tick")


def test_sim_command_serves_a_board_until_ctrl_c(micropython, tmp_path):
    link = tmp_path / "leakmon0"
    proc = subprocess.Popen(LEAKMON + ["sim", "--empty", "--link", str(link), "--flash", str(tmp_path / "f")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(link)
        assert os.readlink(link).startswith("/dev/pts/")
        res = mpremote(str(link), "exec", "print('alive')")
        assert res.stdout.strip() == "alive", res.stderr
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "virtual board on /dev/pts/" in err
    assert not link.exists()


def test_leakmon_flash_stops_a_streaming_node_with_ctrl_c_alone(micropython, monkeypatch):
    """No leakmon REPL command first: Ctrl-C, as mpremote does, is enough (protocol v1.1)."""
    from leakmon.deploy import flash

    def not_needed(repl: object) -> None:
        raise AssertionError("the REPL command was sent: Ctrl-C did not stop the firmware")

    with VirtualBoard(scenario.load("steady_leak"), speed=10) as b:
        with Node.open(b.port) as node:
            node.handshake()
        monkeypatch.setattr(flash, "_ask_to_leave", not_needed)
        # 10 s for the prompt, not the 2 s default: on a loaded machine the virtual board's
        # firmware can take longer than that to stop, and then the REPL command would be sent.
        report = flash.deploy(b.port, flash.board_profile("sim"), handshake_s=20, repl_timeout_s=10)
        assert report.hello is not None and report.hello.proto_minor == 1


def test_mpremote_against_leakmon_sim_with_the_firmware_running(micropython, tmp_path):
    link = tmp_path / "leakmon0"
    proc = subprocess.Popen(LEAKMON + ["sim", "--link", str(link), "--speed", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(link)
        with Node.open(str(link)) as node:  # the firmware streams
            assert node.handshake(timeout_s=10).board == "sim"
        res = mpremote(str(link), "fs", "ls")
        assert res.returncode == 0 and ls_sizes(res.stdout)["app.py"] > 1000, res.stderr
        res = mpremote(str(link), "exec", "print('alive')")
        assert res.stdout.strip() == "alive", res.stderr
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "main.py ended (interrupted)" in err  # mpremote's Ctrl-C stopped the firmware


def test_sim_has_no_ctrl_c_option_any_more():
    res = subprocess.run(LEAKMON + ["sim", "--ctrl-c"], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "--ctrl-c" in res.stderr


def test_ctrl_c_drops_input_the_program_never_read(board):
    """As a board's USB-CDC does: what was sent before a Ctrl-C and not read by the
    program is not typed into the REPL that follows (it could be half a frame)."""
    with serial.Serial(board.port, timeout=0.05) as port:
        read_until(port, b"tick 2")
        port.write(b"print('typed' + 'ahead')\r\x03")  # the ticker never reads its input
        read_until(port, b">>> ")
        port.write(b"print('after' + 'wards')\r")
        out = read_until(port, b"afterwards\n")
    assert b"typedahead" not in out
