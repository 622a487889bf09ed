"""BMP280/BME280 compensation: the datasheet's worked example, Bosch's C transcribed,
the virtual board's model inverted and compensated back, and array shapes."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from compensation_util import (
    FakeHardware,
    assert_model_is_host,
    assert_rejects_bad_raw,
    assert_within_half_count,
    burst,
    grid,
)
from leakmon.sensors.bmp280 import (
    Bmp280Calibration,
    compensate,
    make_compensator,
    parse_calibration,
    unpack_raw,
)
from leakmon.sim.vboard import bmp280_model

# Worked example: BMP280 datasheet (BST-BMP280-DS001) section 3.12, table
# "compensation computation example": dig_T1..dig_P9 below, adc_T = 519888,
# adc_P = 415148 -> t_fine = 128422.287, T = 25.08 C, p = 100653.27 Pa (double
# version). The same numbers are quoted in many independent drivers' tests.
EXAMPLE_COEFFS = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
EXAMPLE_CALIB = struct.pack("<HhhHhhhhhhhh", *EXAMPLE_COEFFS)
EXAMPLE_ADC_T = 519888
EXAMPLE_ADC_P = 415148
EXAMPLE_RAW = bytes.fromhex("655AC07EED00")  # 0xF7..0xFC holding those two counts
EXAMPLE_T_FINE = 128422.2869948
EXAMPLE_TEMPERATURE_C = 25.08
EXAMPLE_PRESSURE_PA = 100653.27


def test_worked_example() -> None:
    cal = parse_calibration(EXAMPLE_CALIB)
    adc_p, adc_t = unpack_raw(np.frombuffer(EXAMPLE_RAW, dtype=np.uint8))
    assert adc_p.tolist() == [EXAMPLE_ADC_P] and adc_t.tolist() == [EXAMPLE_ADC_T]
    p, t = compensate(adc_p, adc_t, cal)
    # The table's t_fine is printed from a less precise evaluation (1e-5 apart).
    assert bmp280_model.t_fine(EXAMPLE_ADC_T, bmp280_model.parse_calib(EXAMPLE_CALIB)) == \
        pytest.approx(EXAMPLE_T_FINE, abs=1e-4)
    assert round(float(t[0]) - 273.15, 2) == EXAMPLE_TEMPERATURE_C
    assert round(float(p[0]), 2) == EXAMPLE_PRESSURE_PA
    assert float(p[0]) == pytest.approx(EXAMPLE_PRESSURE_PA, abs=0.005)


def test_model_default_is_the_worked_example() -> None:
    assert bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX) == EXAMPLE_CALIB


def test_parse() -> None:
    assert parse_calibration(EXAMPLE_CALIB) == Bmp280Calibration(*EXAMPLE_COEFFS)
    # dig_T1 and dig_P1 are unsigned, the rest signed.
    cal = parse_calibration(b"\xff\xff" * 12)
    assert cal.dig_t1 == 65535 and cal.dig_p1 == 65535 and cal.dig_t2 == -1 and cal.dig_p9 == -1


@pytest.mark.parametrize("n", [0, 23, 25, 26, 32])
def test_wrong_block_length(n: int) -> None:
    with pytest.raises(ValueError, match="24 bytes"):
        parse_calibration(bytes(n))
    with pytest.raises(ValueError, match="24 bytes"):
        make_compensator(bytes(n))


def test_unpack_raw_shapes() -> None:
    flat = np.frombuffer(EXAMPLE_RAW * 3, dtype=np.uint8)
    for raw in (flat, flat.reshape(3, 6), EXAMPLE_RAW * 3):
        p, t = unpack_raw(raw)
        assert p.dtype == np.int64 and t.dtype == np.int64
        assert p.tolist() == [EXAMPLE_ADC_P] * 3 and t.tolist() == [EXAMPLE_ADC_T] * 3
    # The low nibble of xlsb is not data.
    p, _ = unpack_raw(bytes.fromhex("655ACF7EED0F"))
    assert p.tolist() == [EXAMPLE_ADC_P]
    assert_rejects_bad_raw(unpack_raw, 6)


def test_make_compensator() -> None:
    run = make_compensator(EXAMPLE_CALIB)
    p, t = run(np.frombuffer(EXAMPLE_RAW * 2, dtype=np.uint8).reshape(2, 6))
    assert p.shape == (2,) and t.shape == (2,)
    assert p[0] == pytest.approx(EXAMPLE_PRESSURE_PA, abs=0.005)


# ---- Bosch's double-precision code (datasheet 8.1 / bme280.c), transcribed ----

def _bosch(block: bytes, adc_p: int, adc_t: int, truncate: bool = True,
           clamp: bool = False) -> tuple[float, float]:
    """(pressure Pa, temperature C) as the C code computes them.

    truncate=True casts t_fine to int32 as the C code does; clamp=True adds
    bme280.c's limits.
    """
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack("<HhhHhhhhhhhh", block)
    var1 = (float(adc_t) / 16384.0 - float(t1) / 1024.0) * float(t2)
    var2 = ((float(adc_t) / 131072.0 - float(t1) / 8192.0)
            * (float(adc_t) / 131072.0 - float(t1) / 8192.0)) * float(t3)
    t_fine = float(int(var1 + var2)) if truncate else var1 + var2
    temperature = (var1 + var2) / 5120.0

    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * float(p6) / 32768.0
    var2 = var2 + var1 * float(p5) * 2.0
    var2 = var2 / 4.0 + float(p4) * 65536.0
    var3 = float(p3) * var1 * var1 / 524288.0
    var1 = (var3 + float(p2) * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * float(p1)
    pressure = 1048576.0 - float(adc_p)
    pressure = (pressure - var2 / 4096.0) * 6250.0 / var1
    var1 = float(p9) * pressure * pressure / 2147483648.0
    var2 = pressure * float(p8) / 32768.0
    pressure = pressure + (var1 + var2 + float(p7)) / 16.0
    if clamp:
        temperature = min(max(temperature, -40.0), 85.0)
        pressure = min(max(pressure, 30000.0), 110000.0)
    return pressure, temperature


def _realistic_raw(rng: random.Random, n: int) -> tuple[list[int], list[int]]:
    # Counts the example chip gives between about -40..85 C and 30..110 kPa.
    return ([rng.randrange(291_000, 843_000) for _ in range(n)],
            [rng.randrange(313_000, 713_000) for _ in range(n)])


def test_matches_bosch_transcription() -> None:
    rng = random.Random(7)
    ups, uts = _realistic_raw(rng, 2000)
    cal = parse_calibration(EXAMPLE_CALIB)
    p, t = compensate(np.array(ups), np.array(uts), cal)
    exact = np.array([_bosch(EXAMPLE_CALIB, u, v, truncate=False) for u, v in zip(ups, uts)])
    np.testing.assert_allclose(p, exact[:, 0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(t - 273.15, exact[:, 1], rtol=0, atol=1e-12)
    # The C code's int32 t_fine moves the pressure by at most ~0.03 Pa here.
    bosch = np.array([_bosch(EXAMPLE_CALIB, u, v)[0] for u, v in zip(ups, uts)])
    assert np.max(np.abs(p - bosch)) < 0.04
    # The worked example itself: the C code gives 100653.258, the table 100653.27.
    assert _bosch(EXAMPLE_CALIB, EXAMPLE_ADC_P, EXAMPLE_ADC_T)[0] == pytest.approx(100653.258, abs=1e-3)


def test_clamp_like_bme280_c() -> None:
    rng = random.Random(3)
    ups = [rng.randrange(0, 1 << 20) for _ in range(500)]
    uts = [rng.randrange(0, 1 << 20) for _ in range(500)]
    p, t = compensate(np.array(ups), np.array(uts), parse_calibration(EXAMPLE_CALIB), clamp=True)
    exact = np.array([_bosch(EXAMPLE_CALIB, u, v, truncate=False, clamp=True)
                      for u, v in zip(ups, uts)])
    np.testing.assert_allclose(p, exact[:, 0], rtol=1e-12)
    np.testing.assert_allclose(t - 273.15, exact[:, 1], atol=1e-12)


def test_matches_bosch_on_other_blocks() -> None:
    rng = random.Random(11)
    for _ in range(20):
        block = bytes(rng.randrange(256) for _ in range(24))
        cal = parse_calibration(block)
        if cal.dig_p1 == 0:
            continue
        ups, uts = _realistic_raw(rng, 50)
        p, t = compensate(np.array(ups), np.array(uts), cal)
        exact = np.array([_bosch(block, u, v, truncate=False) for u, v in zip(ups, uts)])
        np.testing.assert_allclose(p, exact[:, 0], rtol=1e-12)
        np.testing.assert_allclose(t - 273.15, exact[:, 1], rtol=1e-12, atol=1e-12)


def test_zero_divisor_is_nan() -> None:
    block = struct.pack("<HhhHhhhhhhhh", *(EXAMPLE_COEFFS[:3] + (0,) + EXAMPLE_COEFFS[4:]))
    p, t = compensate(EXAMPLE_ADC_P, EXAMPLE_ADC_T, parse_calibration(block))
    assert np.isnan(p) and np.isfinite(t)


def test_no_clamp_by_default() -> None:
    cal = parse_calibration(EXAMPLE_CALIB)
    # A 10 kPa reading stays visible unless clamping is asked for.
    adc_p, adc_t = bmp280_model.raw_counts(10_000.0, 293.15, bmp280_model.parse_calib(EXAMPLE_CALIB))
    assert 0 < adc_p < 2**20 - 1
    p, _ = compensate(adc_p, adc_t, cal)
    assert float(p) == pytest.approx(10_000.0, abs=0.1)
    p, _ = compensate(adc_p, adc_t, cal, clamp=True)
    assert float(p) == 30000.0


# ---- The virtual board's model against the host ----

def test_model_forward_is_host_maths_bit_for_bit() -> None:
    rng = random.Random(5)
    ups, uts = _realistic_raw(rng, 5000)
    for block in (EXAMPLE_CALIB, struct.pack("<HhhHhhhhhhhh", 28000, 26000, -1100, 37000,
                                             -10500, 3100, 3000, 120, -7, 15000, -14000, 6100)):
        model_cal = bmp280_model.parse_calib(block)
        p, t = compensate(np.array(ups), np.array(uts), parse_calibration(block))

        def model(u: int, v: int) -> tuple[float, float]:
            tf = bmp280_model.t_fine(v, model_cal)
            return bmp280_model.pressure_pa(u, tf, model_cal), tf / 5120.0 + 273.15

        assert_model_is_host(model, ups, uts, p, t)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return grid(30_000.0, 110_000.0)  # the rated range: 300..1100 hPa


def test_round_trip_quantized() -> None:
    """Model inverse (no noise) -> integer counts -> host: within half a count."""
    cal = parse_calibration(EXAMPLE_CALIB)
    model_cal = bmp280_model.parse_calib(EXAMPLE_CALIB)
    p_true, t_true = _grid()
    raw = np.array([bmp280_model.raw_counts(p, t, model_cal) for p, t in zip(p_true, t_true)])
    assert raw.min() > 0 and raw.max() < 2**20 - 1
    p, t = assert_within_half_count(lambda up, ut: compensate(up, ut, cal), raw, p_true, t_true)
    # One pressure count is 0.13..0.19 Pa for this chip; one temperature count ~3e-4 K.
    assert np.abs(p - p_true).max() < 0.1
    assert np.abs(t - t_true).max() < 2e-4


def test_round_trip_unquantized() -> None:
    """Without rounding, the inversion itself is exact to float precision."""
    cal = parse_calibration(EXAMPLE_CALIB)
    model_cal = bmp280_model.parse_calib(EXAMPLE_CALIB)
    p_true, t_true = _grid()
    ut = np.array([bmp280_model.temperature_counts(t - 273.15, model_cal) for t in t_true])
    up = np.array([
        bmp280_model.pressure_counts(p, bmp280_model.t_fine(u, model_cal), model_cal)
        for p, u in zip(p_true, ut)
    ])
    p, t = compensate(up, ut, cal)
    assert np.abs(p - p_true).max() < 1e-6
    assert np.abs(t - t_true).max() < 1e-9


@pytest.mark.parametrize("chip", ["BMP280", "BME280"])
def test_round_trip_through_registers(chip: str) -> None:
    hw = FakeHardware(101_325.0, 293.15)
    model = bmp280_model.BMP280Model(chip, hw, {"noise_pa": 0, "noise_k": 0})
    block = bytearray(24)
    model.read_into(0x88, block)
    cal = parse_calibration(bytes(block))
    model.write(0xF4, b"\x57")  # osrs_t x2, osrs_p x16, normal
    for p_true, t_true in [(101_325.0, 293.15), (31_000.0, 240.0), (109_000.0, 350.0)]:
        hw.state = (p_true, t_true)
        buf = bytearray(6)
        model.read_into(0xF7, buf)
        p, t = compensate(*unpack_raw(bytes(buf)), cal)
        assert abs(p[0] - p_true) < 0.1
        assert abs(t[0] - t_true) < 2e-4


def test_model_offset_tempco_and_noise() -> None:
    hw = FakeHardware(100_000.0, 308.15)
    cfg = {"noise_pa": 1.3, "noise_k": 0.0, "offset_pa": 3.0, "tempco_pa_per_k": 1.5}
    model = bmp280_model.BMP280Model("BMP280", hw, cfg)
    model.write(0xF4, b"\x57")
    cal = parse_calibration(model.calib)
    p, _ = compensate(*unpack_raw(burst(model, 0xF7, 6)), cal)
    expected = 100_000.0 + 3.0 + 1.5 * 10.0
    assert abs(p.mean() - expected) < 4 * 1.3 / np.sqrt(2000)
    assert 1.2 < p.std() < 1.4
