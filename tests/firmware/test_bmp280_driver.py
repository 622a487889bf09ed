"""firmware/bmp280.py under the real MicroPython unix port, on the virtual board's
BMP280/BME280 register model; plus the model's register behaviour under CPython."""

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
from leakmon.sensors.bmp280 import compensate, parse_calibration, unpack_raw
from leakmon.sim.vboard import bmp280_model

NOISE_PA = 1.3  # the model's defaults
NOISE_K = 0.005


def _sim(sensor: dict[str, Any] | None = None, *more: dict[str, Any]) -> dict[str, Any]:
    return drivers_util.sim({"bus": 0, "addr": 0x77, "chip": "BMP280"}, sensor, *more)


@pytest.fixture
def board(run_mp: Any, tmp_path: Path) -> Board:
    return Board(run_mp, tmp_path)


READ_SCRIPT = read_script("bmp280", "BMP280", 0x77, 40, """\
i2c = machine.I2C(0)
print("REGS", binascii.hexlify(i2c.readfrom_mem(0x77, 0xF2, 4)).decode())
""")


@pytest.mark.parametrize("chip,code", [("BMP280", 3), ("BME280", 4)])
def test_reads_match_chamber(board: Board, chip: str, code: int) -> None:
    lines = board.run(_sim({"chip": chip}), READ_SCRIPT)
    assert tagged(lines, "CHIP") == [str(code)]
    block = bytes.fromhex(tagged(lines, "CALIB")[0])
    assert block == bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)
    raw = bytes.fromhex("".join(tagged(lines, "RAW")))
    assert len(raw) == 40 * 6
    p, t = compensate(*unpack_raw(raw), parse_calibration(block))
    assert_reads_chamber(p, t, NOISE_PA, NOISE_K)
    # ctrl_hum (humidity skipped), status, ctrl_meas (x2, x16, normal), config (0.5 ms, IIR off)
    assert tagged(lines, "REGS") == ["00005700"]


def test_model_forward_bit_for_bit_in_micropython(board: Board) -> None:
    """The model's float maths in the VM equals the host's numpy maths exactly."""
    rng = random.Random(2)
    pairs = [(rng.randrange(291_000, 843_000), rng.randrange(313_000, 713_000)) for _ in range(200)]
    ups, uts = np.array(pairs).T
    p, t = compensate(ups, uts, parse_calibration(bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)))
    board.assert_forward(_sim(), (
        "import bmp280_model as m\n"
        "cal = m.parse_calib(bytes.fromhex(m.DEFAULT_CALIB_HEX))\n"
    ), "up, ut", pairs, (
        "    tf = m.t_fine(ut, cal)\n"
        "    b = struct.pack('<dd', m.pressure_pa(up, tf, cal), tf / 5120.0 + m.ZERO_C_IN_K)\n"
    ), p, t)


def test_read_raw_into_allocates_nothing(board: Board) -> None:
    assert_allocates_nothing(board.run(_sim(), heap_lock_script("bmp280", "BMP280", 0x77, 6)), 6)


def _expect_error(board: Board, sim: dict[str, Any], ctor: str) -> tuple[str, str]:
    return recorded_error(board, sim, "bmp280", ctor)


@pytest.mark.parametrize("chip_id", [0x50, 0x60 + 1, 0x00])
def test_wrong_chip_id_writes_nothing(board: Board, chip_id: int) -> None:
    err, writes = _expect_error(board, _sim({"chip_id": chip_id}), "bmp280.BMP280(bus, 0x77)")
    assert err.startswith("OSError") and "chip id 0x%02x" % chip_id in err
    assert writes == "0"


def test_other_chips_are_refused_without_writes(board: Board) -> None:
    # A DPS310 (product id at 0x0D, nothing at 0xD0) is not taken for a BMP280.
    err, writes = _expect_error(board, _sim({"chip": "DPS310"}), "bmp280.BMP280(bus, 0x77)")
    assert err.startswith("OSError") and writes == "0"


def test_no_device_at_address(board: Board) -> None:
    err, _ = _expect_error(board, _sim(), "bmp280.BMP280(bus, 0x76)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(board: Board) -> None:
    err, _ = _expect_error(board, _sim({"reset_busy_reads": 10_000}), "bmp280.BMP280(bus, 0x77)")
    assert err.startswith("OSError") and "soft reset" in err


@pytest.mark.parametrize("kwargs,message", [
    ("osrs_p=0", "osrs_p must be 1..5 (x1, x2, x4, x8, x16)"),
    ("osrs_t=6", "osrs_t must be 1..5"),
    ("t_sb=8", "t_sb must be 0..7"),
    ("iir=5", "iir must be 0..4 (off, 2, 4, 8, 16)"),
])
def test_invalid_settings_rejected_before_io(board: Board, kwargs: str, message: str) -> None:
    err, writes = _expect_error(board, _sim(), f"bmp280.BMP280(bus, 0x77, {kwargs})")
    assert err.startswith("ValueError") and message in err
    assert writes == "0"


def test_discovered_by_the_node(board: Board) -> None:
    # discovery.probe tries the BMP3xx and DPS310 drivers first: both must let these chips be.
    sim = _sim({"chip": "BMP280", "addr": 0x76}, {"bus": 0, "addr": 0x77, "chip": "BME280"})
    lines = board.run(sim, DISCOVER_SCRIPT)
    assert tagged(lines, "FOUND") == ["118 BMP280 3 6 24", "119 BMP280 4 6 24"]


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    compile_with_mpy_cross(tmp_path, "bmp280")


# ---- the register model alone, under CPython ----

RESET_DATA = bytes.fromhex("800000800000")


def test_model_power_on_state() -> None:
    m = bmp280_model.BMP280Model("BMP280", QuietHardware(), {})
    assert read(m, 0xD0) == b"\x58"
    assert read(m, 0x88, 24) == bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)
    assert read(m, 0xA1) == b"\x00" and read(m, 0xE1, 7) == bytes(7)  # no humidity trim
    assert read(m, 0xF3) == b"\x00"
    assert read(m, 0xF7, 6) == RESET_DATA  # asleep: reset values


def test_model_bme280_has_humidity_trimming() -> None:
    m = bmp280_model.BMP280Model("BME280", QuietHardware(), {})
    assert read(m, 0xD0) == b"\x60"
    hum = bytes.fromhex(bmp280_model.DEFAULT_HUM_CALIB_HEX)
    assert read(m, 0xA1) == hum[:1] and read(m, 0xE1, 7) == hum[1:]
    h4 = (hum[4] << 4) | (hum[5] & 0x0F)
    h5 = (hum[6] << 4) | (hum[5] >> 4)
    assert (hum[0], hum[1] | hum[2] << 8, hum[3], h4, h5, hum[7]) == (75, 362, 0, 315, 50, 30)


def test_model_soft_reset_restores_defaults() -> None:
    m = bmp280_model.BMP280Model("BME280", QuietHardware(), {"reset_busy_reads": 2})
    m.write(0xF5, b"\x10")
    m.write(0xF2, b"\x01")
    m.write(0xF4, b"\x57")
    assert read(m, 0xF7, 6) != RESET_DATA
    m.write(0xE0, b"\xb6")
    assert [read(m, 0xF3)[0] & 0x01 for _ in range(3)] == [1, 1, 0]  # NVM copy, then ready
    assert read(m, 0xF2, 4) == bytes(4)
    assert read(m, 0xF7, 8) == RESET_DATA + b"\x80\x00"
    assert read(m, 0xD0) == b"\x60"


def test_model_forced_and_skipped() -> None:
    m = bmp280_model.BMP280Model("BMP280", QuietHardware(), {})
    m.write(0xF4, b"\x55")  # x2, x16, forced: one conversion, back to sleep
    first = read(m, 0xF7, 6)
    assert first != RESET_DATA
    assert read(m, 0xF4) == b"\x54"
    assert read(m, 0xF7, 6) == first  # asleep: nothing new
    m.write(0xE0, b"\xb6")
    m.write(0xF4, b"\x43")  # temperature x2, pressure skipped, normal
    data = read(m, 0xF7, 6)
    assert data[:3] == RESET_DATA[:3] and data[3:] != RESET_DATA[3:]


def test_model_ignores_bad_reset_and_ctrl_hum_on_bmp280() -> None:
    m = bmp280_model.BMP280Model("BMP280", QuietHardware(), {})
    m.write(0xF4, b"\x57")
    m.write(0xE0, b"\x12")  # not the reset word
    assert read(m, 0xF4) == b"\x57"
    m.write(0xF2, b"\x05")
    assert read(m, 0xF2) == b"\x00"
