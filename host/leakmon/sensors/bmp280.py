"""BMP280 / BME280 compensation, vectorized over numpy arrays.

Follows the double-precision formulas of the BMP280 datasheet (section 8.1,
``bmp280_compensate_T_double`` / ``bmp280_compensate_P_double``), which are the
same operations as Bosch's BME280_SensorAPI (bme280.c, ``compensate_temperature``
and ``compensate_pressure`` without BME280_32BIT/64BIT_ENABLE). Deliberate
differences:

* ``t_fine`` stays a float. The C code casts it to int32 (a step of 1/5120 K,
  moving the pressure by up to ~0.03 Pa); the datasheet's own worked example
  (section 3.12: t_fine = 128422.287, p = 100653.27 Pa) carries it unrounded,
  and an unrounded t_fine keeps the pressure a smooth function of temperature;
* results are not clamped to the rated range unless ``clamp=True`` (bme280.c
  clamps to -40..85 C and 30..110 kPa; a chamber leaking to vacuum goes lower);
* a calibration that makes the pressure denominator zero gives NaN, not 0 Pa.

The firmware skips humidity on the BME280, so both chips send the same 24-byte
block (registers 0x88..0x9F) and 6 data bytes (0xF7..0xFC). The virtual board's
model (``leakmon.sim.vboard.bmp280_model``) runs the same float operations in the
same order, so the two agree bit for bit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon.sensors.base import Compensator, bind_compensator, raw_rows

CALIB_REG = 0x88
CALIB_LEN = 24
RAW_LEN = 6
CALIB_FMT = "<HhhHhhhhhhhh"  # dig_T1..dig_T3, dig_P1..dig_P9 (datasheet table 17)

# bme280.c clamping limits (double version).
TEMP_MIN_C = -40.0
TEMP_MAX_C = 85.0
PRESSURE_MIN_PA = 30000.0
PRESSURE_MAX_PA = 110000.0

ZERO_C_IN_K = 273.15


@dataclass(frozen=True)
class Bmp280Calibration:
    """Trimming parameters dig_T1..dig_P9 as stored in NVM (integers)."""

    dig_t1: int
    dig_t2: int
    dig_t3: int
    dig_p1: int
    dig_p2: int
    dig_p3: int
    dig_p4: int
    dig_p5: int
    dig_p6: int
    dig_p7: int
    dig_p8: int
    dig_p9: int


def parse_calibration(block: bytes) -> Bmp280Calibration:
    """Coefficients from the 24-byte NVM block read at registers 0x88..0x9F."""
    if len(block) != CALIB_LEN:
        raise ValueError(
            f"BMP280 calibration block must be {CALIB_LEN} bytes (registers 0x88..0x9F), "
            f"got {len(block)}"
        )
    return Bmp280Calibration(*struct.unpack(CALIB_FMT, bytes(block)))


def unpack_raw(raw: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(adc_P, adc_T) 20-bit counts from data registers 0xF7..0xFC.

    ``raw`` is an (N, 6) uint8 array or a flat buffer of N*6 bytes: press_msb,
    press_lsb, press_xlsb, temp_msb, temp_lsb, temp_xlsb (xlsb holds bits 7..4).
    """
    w = raw_rows(raw, RAW_LEN, "BMP280")
    pressure = (w[:, 0] << 12) | (w[:, 1] << 4) | (w[:, 2] >> 4)
    temperature = (w[:, 3] << 12) | (w[:, 4] << 4) | (w[:, 5] >> 4)
    return pressure, temperature


def compensate(
    adc_p: npt.ArrayLike,
    adc_t: npt.ArrayLike,
    cal: Bmp280Calibration,
    *,
    clamp: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(pressure_pa, temperature_k) in float64 from raw 20-bit counts.

    Inputs broadcast against each other. With ``clamp=True`` the results are
    limited as bme280.c limits them (the pressure still uses the unclamped
    ``t_fine``, as there).
    """
    ut = np.asarray(adc_t, dtype=np.float64)
    up = np.asarray(adc_p, dtype=np.float64)
    t1 = float(cal.dig_t1)

    # Temperature (datasheet 8.1); the same expression order as the C code.
    var1 = (ut / 16384.0 - t1 / 1024.0) * float(cal.dig_t2)
    d = ut / 131072.0 - t1 / 8192.0
    var2 = (d * d) * float(cal.dig_t3)
    t_fine = var1 + var2  # not truncated: see the module docstring
    temperature_c = t_fine / 5120.0

    # Pressure.
    v1 = t_fine / 2.0 - 64000.0
    v2 = v1 * v1 * float(cal.dig_p6) / 32768.0
    v2 = v2 + v1 * float(cal.dig_p5) * 2.0
    v2 = v2 / 4.0 + float(cal.dig_p4) * 65536.0
    v1 = (float(cal.dig_p3) * v1 * v1 / 524288.0 + float(cal.dig_p2) * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * float(cal.dig_p1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1048576.0 - up
        p = (p - v2 / 4096.0) * 6250.0 / v1
    p = np.where(v1 == 0.0, np.nan, p)
    q1 = float(cal.dig_p9) * p * p / 2147483648.0
    q2 = p * float(cal.dig_p8) / 32768.0
    pressure = p + (q1 + q2 + float(cal.dig_p7)) / 16.0

    if clamp:
        temperature_c = np.clip(temperature_c, TEMP_MIN_C, TEMP_MAX_C)
        pressure = np.clip(pressure, PRESSURE_MIN_PA, PRESSURE_MAX_PA)
    return (np.asarray(pressure, dtype=np.float64),
            np.asarray(temperature_c + ZERO_C_IN_K, dtype=np.float64))


def make_compensator(block: bytes) -> Compensator:
    """raw (n, 6) uint8 -> (pressure_pa, temperature_k), for leakmon.sensors."""
    return bind_compensator(unpack_raw, compensate, parse_calibration(block))
