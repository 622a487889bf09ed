"""firmware/dps310.py under the real MicroPython unix port, on the virtual board's
DPS310 register model (which models the temperature-fuse, temperature-source and
shift-bit traps); plus the model's register behaviour under CPython."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import drivers_util
import numpy as np
import pytest
from drivers_util import (
    DISCOVER_SCRIPT,
    Board,
    QuietHardware,
    assert_allocates_nothing,
    assert_reads_chamber,
    compile_with_mpy_cross,
    heap_lock_script,
    read,
    read_script,
    recorded_error,
    tagged,
)
from leakmon.sensors.dps310 import compensate, parse_calibration, unpack_raw
from leakmon.sim.vboard import dps310_model

NOISE_PA = 0.3  # the model's defaults
NOISE_K = 0.002


def _sim(sensor: dict[str, Any] | None = None, *more: dict[str, Any]) -> dict[str, Any]:
    return drivers_util.sim({"bus": 0, "addr": 0x77, "chip": "DPS310"}, sensor, *more)


@pytest.fixture
def board(run_mp: Any, tmp_path: Path) -> Board:
    return Board(run_mp, tmp_path)


READ_SCRIPT = read_script("dps310", "DPS310", 0x77, 40, """\
print("CFG", binascii.hexlify(machine.I2C(0).readfrom_mem(0x77, 0x06, 4)).decode())
""")


@pytest.mark.parametrize("coef_srce", [0x80, 0x00])
def test_reads_match_chamber(board: Board, coef_srce: int) -> None:
    # The model's part has the bad temperature fuse and, in the first case,
    # coefficients for the external sensor: a driver that skips the fuse fix or
    # leaves TMP_EXT at its reset value reads degrees wrong.
    lines = board.run(_sim({"coef_srce": coef_srce, "bad_fuse": True}), READ_SCRIPT)
    assert tagged(lines, "CHIP") == ["5"]
    block = bytes.fromhex(tagged(lines, "CALIB")[0])
    assert len(block) == 21
    assert block[:18] == bytes.fromhex(dps310_model.DEFAULT_COEF_HEX)
    assert block[18:] == bytes([0x45, coef_srce | 0x41, coef_srce])  # x32 and x2 at 16 Hz
    # PRS_CFG, TMP_CFG, MEAS_CFG (ready flags, background P+T), CFG_REG (P_SHIFT only)
    cfg = bytes.fromhex(tagged(lines, "CFG")[0])
    assert cfg[:2] == block[18:20] and cfg[2] & 0xC7 == 0xC7 and cfg[3] == 0x04

    raw = bytes.fromhex("".join(tagged(lines, "RAW")))
    assert len(raw) == 40 * 6
    p, t = compensate(*unpack_raw(raw), parse_calibration(block))
    assert_reads_chamber(p, t, NOISE_PA, NOISE_K)


def test_model_forward_bit_for_bit_in_micropython(board: Board) -> None:
    """The model's float maths in the VM equals the host's numpy maths exactly."""
    rng = random.Random(2)
    pairs = [(rng.randrange(-2**23, 2**23), rng.randrange(-2**23, 2**23)) for _ in range(200)]
    ups, uts = np.array(pairs).T
    block = bytes.fromhex(dps310_model.DEFAULT_COEF_HEX) + b"\x45\xc1\x80"
    p, t = compensate(ups, uts, parse_calibration(block))
    board.assert_forward(_sim(), (
        "import dps310_model as m\n"
        "cal = m.parse_coef(bytes.fromhex(m.DEFAULT_COEF_HEX))\n"
    ), "up, ut", pairs, "    b = struct.pack('<dd', *m.compensate(up, ut, cal, 516096, 1572864))\n", p, t)


def test_read_raw_into_allocates_nothing(board: Board) -> None:
    assert_allocates_nothing(board.run(_sim(), heap_lock_script("dps310", "DPS310", 0x77, 6)), 6)


def _expect_error(board: Board, sim: dict[str, Any], ctor: str) -> tuple[str, str]:
    return recorded_error(board, sim, "dps310", ctor)


@pytest.mark.parametrize("chip_id", [0x11, 0x58, 0x00])
def test_wrong_product_id_writes_nothing(board: Board, chip_id: int) -> None:
    err, writes = _expect_error(board, _sim({"chip_id": chip_id}), "dps310.DPS310(bus, 0x77)")
    assert err.startswith("OSError") and "product id 0x%02x" % chip_id in err
    assert writes == "0"


@pytest.mark.parametrize("chip", ["BMP280", "BME280", "BMP390"])
def test_other_chips_are_refused_without_writes(board: Board, chip: str) -> None:
    err, writes = _expect_error(board, _sim({"chip": chip}), "dps310.DPS310(bus, 0x77)")
    assert err.startswith("OSError") and writes == "0"


def test_no_device_at_address(board: Board) -> None:
    err, _ = _expect_error(board, _sim(), "dps310.DPS310(bus, 0x76)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(board: Board) -> None:
    err, _ = _expect_error(board, _sim({"reset_busy_reads": 10_000}), "dps310.DPS310(bus, 0x77)")
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
def test_invalid_settings_rejected_before_io(board: Board, kwargs: str, message: str) -> None:
    err, writes = _expect_error(board, _sim(), f"dps310.DPS310(bus, 0x77, {kwargs})")
    assert err.startswith("ValueError") and message in err
    assert writes == "0"


def test_shift_bits_follow_oversampling(board: Board) -> None:
    script = (
        "import machine, dps310\n"
        "i2c = machine.I2C(0)\n"
        "for kw in ({'prs_prc': 3, 'tmp_prc': 0}, {'prs_prc': 4, 'prs_rate': 3, 'tmp_prc': 4, "
        "'tmp_rate': 3}, {'prs_prc': 7, 'prs_rate': 0, 'tmp_prc': 7, 'tmp_rate': 0}):\n"
        "    s = dps310.DPS310(i2c, 0x77, **kw)\n"
        "    print('CFG', i2c.readfrom_mem(0x77, 0x09, 1)[0], s.calib[18], s.calib[19])\n"
    )
    lines = board.run(_sim({"coef_srce": 0}), script)
    assert tagged(lines, "CFG") == ["0 67 64", "12 52 52", "12 7 7"]


def test_discovered_by_the_node(board: Board) -> None:
    # discovery.probe tries the BMP3xx driver first: it must leave a DPS310 be.
    sim = _sim({"addr": 0x77}, {"bus": 0, "addr": 0x76, "chip": "DPS310"})
    lines = board.run(sim, DISCOVER_SCRIPT)
    assert tagged(lines, "FOUND") == ["118 DPS310 5 6 21", "119 DPS310 5 6 21"]


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    compile_with_mpy_cross(tmp_path, "dps310")


# ---- the register model alone, under CPython ----

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
    cfg = read(model, 0x06, 2)
    srce = read(model, 0x28)
    block = read(model, 0x10, 18) + bytes([cfg[0], (cfg[1] & 0x7F) | srce[0]]) + srce
    p, t = compensate(*unpack_raw(read(model, 0x00, 6)), parse_calibration(block))
    return float(p[0]), float(t[0])


def test_model_power_on_state() -> None:
    m = dps310_model.DPS310Model("DPS310", QuietHardware(), {})
    assert read(m, 0x0D) == b"\x10"
    assert read(m, 0x10, 18) == bytes.fromhex(dps310_model.DEFAULT_COEF_HEX)
    assert read(m, 0x28) == b"\x80"
    assert read(m, 0x08) == b"\xc0"  # sensor and coefficients ready, idle
    assert read(m, 0x00, 6) == bytes(6)


def test_model_soft_reset() -> None:
    m = dps310_model.DPS310Model("DPS310", QuietHardware(), {"reset_busy_reads": 2})
    _w(m, 0x06, 0x45)
    _w(m, 0x08, 0x07)
    assert read(m, 0x00, 6) != bytes(6)
    _w(m, 0x0C, 0x89)
    assert [read(m, 0x08)[0] for _ in range(3)] == [0x00, 0x00, 0xC0]
    assert read(m, 0x06, 4) == b"\x00\x00\xc0\x00"
    _w(m, 0x0C, 0x80)  # FIFO flush alone is not a reset
    assert read(m, 0x08) == b"\xc0"


def test_model_temperature_traps() -> None:
    m = dps310_model.DPS310Model("DPS310", QuietHardware(), {"noise_pa": 0, "noise_k": 0})
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
    good = dps310_model.DPS310Model("DPS310", QuietHardware(), {"bad_fuse": False, "noise_pa": 0,
                                                             "noise_k": 0})
    _w(good, 0x06, 0x45)
    _w(good, 0x09, 0x04)
    _w(good, 0x07, 0xC1)
    _w(good, 0x08, 0x07)
    assert _measured(good)[1] == pytest.approx(293.15, abs=2e-4)


def test_model_shift_bit_overflow() -> None:
    m = dps310_model.DPS310Model("DPS310", QuietHardware(), {"noise_pa": 0, "noise_k": 0})
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
    m = dps310_model.DPS310Model("DPS310", QuietHardware(), {})
    _w(m, 0x08, 0x02)  # one temperature conversion, then idle
    assert read(m, 0x08) == b"\xe0"
    assert read(m, 0x03, 3) != bytes(3) and read(m, 0x00, 3) == bytes(3)
    assert read(m, 0x08) == b"\xc0"  # TMP_RDY cleared by reading the result
    _w(m, 0x08, 0x01)
    assert read(m, 0x08) == b"\xd0"
    read(m, 0x00, 3)
    assert read(m, 0x08) == b"\xc0"
    _w(m, 0x08, 0x03)  # not a mode
    assert read(m, 0x08) == b"\xc0"
