"""firmware/bmp3xx.py under the real MicroPython unix port, on the virtual board's
BMP3 register model; plus the model's register behaviour under CPython."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import drivers_util
import numpy as np
import pytest
from drivers_util import (
    Board,
    QuietHardware,
    assert_allocates_nothing,
    assert_reads_chamber,
    compile_with_mpy_cross,
    heap_lock_script,
    read,
    read_script,
    tagged,
)
from leakmon.sensors.bmp3 import compensate, parse_calibration, unpack_raw
from leakmon.sim.vboard import bmp3_model

NOISE_PA = 0.3  # the model's defaults
NOISE_K = 0.002


def _sim(sensor: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return drivers_util.sim({"bus": 0, "addr": 119, "chip": "BMP390"}, sensor, **kw)


@pytest.fixture
def board(run_mp: Any, tmp_path: Path) -> Board:
    return Board(run_mp, tmp_path)


READ_SCRIPT = read_script("bmp3xx", "BMP3XX", 0x77, 40)


@pytest.mark.parametrize("chip,code", [("BMP388", 1), ("BMP390", 2)])
def test_reads_match_chamber(board: Board, chip: str, code: int) -> None:
    lines = board.run(_sim({"chip": chip}), READ_SCRIPT)
    assert tagged(lines, "CHIP") == [str(code)]
    cal = parse_calibration(bytes.fromhex(tagged(lines, "CALIB")[0]))
    raw = bytes.fromhex("".join(tagged(lines, "RAW")))
    assert len(raw) == 40 * 6
    p, t = compensate(*unpack_raw(raw), cal)
    assert_reads_chamber(p, t, NOISE_PA, NOISE_K)


def test_model_forward_bit_for_bit_in_micropython(board: Board) -> None:
    """The model's float maths in the VM equals the host's numpy maths exactly."""
    rng = random.Random(2)
    pairs = [(rng.randrange(4_300_000, 11_800_000), rng.randrange(4_750_000, 11_900_000))
             for _ in range(200)]
    ups, uts = np.array(pairs).T
    p, t = compensate(ups, uts, parse_calibration(bytes.fromhex(bmp3_model.DEFAULT_CALIB_HEX)))
    board.assert_forward(_sim(), (
        "import bmp3_model as m\n"
        "cal = m.parse_calib(bytes.fromhex(m.DEFAULT_CALIB_HEX))\n"
    ), "up, ut", pairs, (
        "    tl = m.t_lin(ut, cal)\n"
        "    b = struct.pack('<dd', m.pressure_pa(up, tl, cal), tl + m.ZERO_C_IN_K)\n"
    ), p, t)


def test_read_raw_into_allocates_nothing(board: Board) -> None:
    assert_allocates_nothing(board.run(_sim(), heap_lock_script("bmp3xx", "BMP3XX", 0x77, 6)), 6)


def _expect_error(board: Board, sim: dict[str, Any], ctor: str) -> str:
    return tagged(board.error(sim, "import machine, bmp3xx\n", f"bmp3xx.{ctor}"), "ERR")[0]


def test_wrong_chip_id(board: Board) -> None:
    err = _expect_error(board, _sim({"chip_id": 0x58}), "BMP3XX(machine.I2C(0), 0x77)")
    assert err.startswith("OSError") and "0x58" in err


def test_no_device_at_address(board: Board) -> None:
    err = _expect_error(board, _sim(), "BMP3XX(machine.I2C(0), 0x76)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(board: Board) -> None:
    err = _expect_error(board, _sim({"reset_busy_reads": 10_000}), "BMP3XX(machine.I2C(0), 0x77)")
    assert err.startswith("OSError") and "soft reset" in err


def test_invalid_osr_odr_rejected_before_io(board: Board) -> None:
    # x32 pressure + x2 temperature take ~69 ms: 25 Hz (odr_sel 3) is too fast.
    err = _expect_error(board, _sim(), "BMP3XX(machine.I2C(0), 0x77, odr_sel=3)")
    assert err.startswith("ValueError") and "odr_sel must be 4..17" in err


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    compile_with_mpy_cross(tmp_path, "bmp3xx")


# ---- the register model alone, under CPython ----

def test_model_power_on_state() -> None:
    m = bmp3_model.BMP3Model("BMP390", QuietHardware(), {})
    assert read(m, 0x00) == b"\x60"
    assert read(m, 0x31, 21) == bytes.fromhex(bmp3_model.DEFAULT_CALIB_HEX)
    assert read(m, 0x03)[0] & 0x10  # cmd_rdy
    assert read(m, 0x04, 6) == b"\x00\x00\x80\x00\x00\x80"  # asleep: reset values


def test_model_soft_reset_restores_defaults() -> None:
    m = bmp3_model.BMP3Model("BMP388", QuietHardware(), {"reset_busy_reads": 2})
    m.write(0x1D, b"\x04")
    m.write(0x1B, b"\x33")
    assert read(m, 0x04, 6) != b"\x00\x00\x80\x00\x00\x80"
    m.write(0x7E, b"\xb6")
    assert [read(m, 0x03)[0] & 0x10 for _ in range(3)] == [0, 0, 0x10]  # busy, then ready
    assert read(m, 0x1B, 3) == b"\x00\x02\x00"
    assert read(m, 0x04, 6) == b"\x00\x00\x80\x00\x00\x80"
    assert read(m, 0x00) == b"\x50"


def test_model_conf_err_keeps_chip_asleep() -> None:
    m = bmp3_model.BMP3Model("BMP390", QuietHardware(), {})
    m.write(0x1C, b"\x2d")  # x32 / x32 at the reset ODR of 200 Hz: impossible
    m.write(0x1B, b"\x33")
    assert read(m, 0x02)[0] & 0x04
    assert read(m, 0x02)[0] == 0  # clear on read
    assert read(m, 0x1B)[0] & 0x30 == 0


def test_model_forced_mode_and_bad_command() -> None:
    m = bmp3_model.BMP3Model("BMP390", QuietHardware(), {})
    m.write(0x1B, b"\x13")  # forced: one conversion, back to sleep
    assert read(m, 0x03)[0] & 0x60 == 0x60
    first = read(m, 0x04, 6)
    assert first != b"\x00\x00\x80\x00\x00\x80"
    assert read(m, 0x1B)[0] == 0x03
    assert read(m, 0x03)[0] & 0x60 == 0  # data read, nothing new
    m.write(0x7E, b"\x12")
    assert read(m, 0x02)[0] & 0x02  # cmd_err
