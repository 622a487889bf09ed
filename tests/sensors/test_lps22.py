"""LPS22HB/LPS22HH conversion: the datasheets' sensitivities applied to hand-made
register bytes, sign extension, the calibration block, the virtual board's model
inverted and converted back, and array shapes."""

from __future__ import annotations

import random

import numpy as np
import pytest
from compensation_util import (
    FakeHardware,
    assert_model_is_host,
    assert_rejects_bad_raw,
    burst,
    grid,
)
from leakmon import sensors, wire
from leakmon.sensors.lps22 import (
    compensate,
    make_compensator,
    parse_calibration,
    unpack_raw,
)
from leakmon.sim.vboard import lps22_model

# Both datasheets (LPS22HB DocID027083 table 2, LPS22HH DS12503 table 2):
# pressure sensitivity 4096 LSB/hPa, temperature sensitivity 100 LSB/deg C,
# two's complement, little-endian from PRESS_OUT_XL (0x28) to TEMP_OUT_H (0x2C).
# Register bytes and the values they stand for, computed by hand from those:
EXAMPLES = [
    # XL    L     H     TL    TH      hPa                       deg C
    ("00 00 3f  c4 09", 0x3F0000 / 4096, 2500 / 100),  # 1008 hPa, 25.00 C
    ("8a f5 3f  1c 0a", 0x3FF58A / 4096, 0x0A1C / 100),  # 1023.3657 hPa, 25.88 C
    ("00 00 10  00 00", 256.0, 0.0),  # 256 hPa, 0 C
    ("ff ff ff  ff ff", -1 / 4096, -0.01),  # sign extension of both words
    ("00 00 80  00 80", -(2**23) / 4096, -327.68),  # most negative counts
    ("ff ff 7f  f0 d8", (2**23 - 1) / 4096, -100.0),  # most positive pressure; -100 C
]


@pytest.mark.parametrize("hexbytes,hpa,deg_c", EXAMPLES)
def test_register_examples(hexbytes: str, hpa: float, deg_c: float) -> None:
    raw = np.frombuffer(bytes.fromhex(hexbytes), dtype=np.uint8)
    p, t = make_compensator(b"\xb1\x5e")(raw.reshape(1, 5))
    assert p[0] == hpa * 100.0  # exact: the scaling is an integer times 100 / 2^12
    assert t[0] == pytest.approx(deg_c + 273.15, abs=1e-12)


def test_unpack_raw_sign_and_shapes() -> None:
    one = bytes.fromhex("8af53f1c0a")
    flat = np.frombuffer(one * 3, dtype=np.uint8)
    for raw in (flat, flat.reshape(3, 5), one * 3):
        p, t = unpack_raw(raw)
        assert p.dtype == np.int64 and t.dtype == np.int64
        assert p.tolist() == [0x3FF58A] * 3 and t.tolist() == [0x0A1C] * 3
    p, t = unpack_raw(bytes.fromhex("000080" "0080"))
    assert p.tolist() == [-(2**23)] and t.tolist() == [-(2**15)]
    assert_rejects_bad_raw(unpack_raw, 5)


@pytest.mark.parametrize("n", [0, 1, 3, 21])
def test_wrong_block_length(n: int) -> None:
    with pytest.raises(ValueError, match="2 bytes"):
        parse_calibration(bytes([0xB1] * n))
    with pytest.raises(ValueError, match="2 bytes"):
        make_compensator(bytes([0xB3] * n))


def test_calibration_block_meaning() -> None:
    hb = parse_calibration(b"\xb1\x5e")  # 75 Hz, LPF ODR/20, BDU: the driver's default
    assert hb.chip == "LPS22HB" and hb.odr_hz == 75.0 and hb.lpf_divider == 20
    hh = parse_calibration(b"\xb3\x2a")  # 10 Hz, LPF ODR/9, BDU
    assert hh.chip == "LPS22HH" and hh.odr_hz == 10.0 and hh.lpf_divider == 9
    assert parse_calibration(b"\xb3\x72").lpf_divider == 2  # 200 Hz, filter off
    with pytest.raises(ValueError, match="0xb1"):
        parse_calibration(b"\x60\x5e")


def test_sensors_table_reaches_this_module() -> None:
    for chip in (wire.CHIP_LPS22HB, wire.CHIP_LPS22HH):
        comp = sensors.compensator(chip, b"\xb3\x5e")
        p, t = comp(np.frombuffer(bytes.fromhex("8af53f1c0a"), dtype=np.uint8).reshape(1, 5))
        assert p[0] == 0x3FF58A * 100 / 4096  # 102334.619... Pa


# ---- The virtual board's model against the host ----

def test_model_forward_is_host_maths_bit_for_bit() -> None:
    rng = random.Random(5)
    rp = [rng.randrange(-(2**23), 2**23) for _ in range(5000)]
    rt = [rng.randrange(-(2**15), 2**15) for _ in range(5000)]
    p, t = compensate(np.array(rp), np.array(rt))
    assert_model_is_host(lambda u, v: (lps22_model.pressure_pa(u), lps22_model.temperature_k(v)),
                         rp, rt, p, t)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return grid(26_000.0, 126_000.0)  # the rated 260..1260 hPa


def test_round_trip_quantized() -> None:
    """Model inverse (no noise) -> integer counts -> host: within half a count."""
    p_true, t_true = _grid()
    raw = np.array([lps22_model.raw_counts(p, t) for p, t in zip(p_true, t_true)])
    p, t = compensate(raw[:, 0], raw[:, 1])
    half_p = 0.5 * 100.0 / 4096.0  # 0.0122 Pa
    half_t = 0.5 / 100.0
    assert np.abs(p - p_true).max() <= half_p * (1 + 1e-9)
    assert np.abs(t - t_true).max() <= half_t * (1 + 1e-9)


def test_round_trip_through_registers() -> None:
    hw = FakeHardware(101_325.0, 293.15)
    model = lps22_model.LPS22Model("LPS22HH", hw, {"noise_pa": 0, "noise_k": 0})
    model.write(0x10, b"\x5e")
    comp = make_compensator(b"\xb3\x5e")
    for p_true, t_true in [(101_325.0, 293.15), (26_500.0, 240.0), (125_000.0, 350.0)]:
        hw.state = (p_true, t_true)
        buf = bytearray(5)
        model.read_into(0x28, buf)
        p, t = comp(np.frombuffer(bytes(buf), dtype=np.uint8).reshape(1, 5))
        assert abs(p[0] - p_true) <= 0.0123
        assert abs(t[0] - t_true) <= 0.0051


def test_model_offset_tempco_and_noise() -> None:
    hw = FakeHardware(100_000.0, 308.15)
    cfg = {"noise_pa": 0.7, "noise_k": 0.0, "offset_pa": 3.0, "tempco_pa_per_k": 0.65}
    model = lps22_model.LPS22Model("LPS22HB", hw, cfg)
    model.write(0x10, b"\x5e")
    buf = burst(model, 0x28, 5)
    p, _ = make_compensator(b"\xb1\x5e")(np.frombuffer(bytes(buf), dtype=np.uint8))
    expected = 100_000.0 + 3.0 + 0.65 * 10.0
    assert abs(p.mean() - expected) < 4 * 0.7 / np.sqrt(2000)
    assert 0.63 < p.std() < 0.77
