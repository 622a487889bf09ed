"""Infineon DPS310 compensation, vectorized over numpy arrays.

The datasheet's formulas (section 4.9: "How to calculate compensated pressure
and temperature values"), as Infineon's Arduino driver (``calcTemp``,
``calcPressure``) evaluates them in double, without its truncation to int:

    T_raw_sc = T_raw / kT            T = c0 / 2 + c1 * T_raw_sc            [deg C]
    P_raw_sc = P_raw / kP
    P = c00 + P_raw_sc * (c10 + P_raw_sc * (c20 + P_raw_sc * c30))
        + T_raw_sc * c01 + T_raw_sc * P_raw_sc * (c11 + P_raw_sc * c21)      [Pa]

kP and kT are the scale factors of the oversampling rates in use, which is why
the firmware's calibration block carries the configuration registers too
(layout: ``firmware/dps310.py``):

    bytes 0..17   COEF registers 0x10..0x21 (c0, c1 s12; c00, c10 s20; c01, c11,
                  c20, c21, c30 s16; big-endian, packed as in datasheet 8.11)
    byte  18      PRS_CFG (0x06): PM_PRC in bits 3..0 selects kP
    byte  19      TMP_CFG (0x07): TMP_PRC in bits 3..0 selects kT, TMP_EXT bit 7
    byte  20      COEF_SRCE (0x28): TMP_COEF_SRCE bit 7, must equal TMP_EXT

The virtual board's model (``leakmon.sim.vboard.dps310_model``) runs the same float
operations in the same order, so the two agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon.sensors.base import Compensator, bind_compensator, raw_rows

COEF_REG = 0x10
COEF_LEN = 18
CALIB_LEN = COEF_LEN + 3
RAW_LEN = 6

# Compensation scale factors for oversampling x1, x2, x4 ... x128 (datasheet table 9).
SCALE_FACTORS = (524288, 1572864, 3670016, 7864320, 253952, 516096, 1040384, 2088960)

ZERO_C_IN_K = 273.15


@dataclass(frozen=True)
class Dps310Calibration:
    """The nine coefficients (integers), the two scale factors and the sensor choice."""

    c0: int
    c1: int
    c00: int
    c10: int
    c01: int
    c11: int
    c20: int
    c21: int
    c30: int
    kp: int
    kt: int
    tmp_ext: bool


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


Coefficients = tuple[int, int, int, int, int, int, int, int, int]


def parse_coefficients(coef: bytes) -> Coefficients:
    """(c0, c1, c00, c10, c01, c11, c20, c21, c30) from registers 0x10..0x21."""
    if len(coef) != COEF_LEN:
        raise ValueError(f"DPS310 coefficients must be {COEF_LEN} bytes (0x10..0x21), got {len(coef)}")
    b = bytes(coef)
    c0 = _signed((b[0] << 4) | (b[1] >> 4), 12)
    c1 = _signed(((b[1] & 0x0F) << 8) | b[2], 12)
    c00 = _signed((b[3] << 12) | (b[4] << 4) | (b[5] >> 4), 20)
    c10 = _signed(((b[5] & 0x0F) << 16) | (b[6] << 8) | b[7], 20)
    c01, c11, c20, c21, c30 = (_signed((b[i] << 8) | b[i + 1], 16) for i in range(8, 18, 2))
    return (c0, c1, c00, c10, c01, c11, c20, c21, c30)


def parse_calibration(block: bytes) -> Dps310Calibration:
    """Coefficients and scale factors from the firmware's 21-byte block."""
    if len(block) != CALIB_LEN:
        raise ValueError(
            f"DPS310 calibration block must be {CALIB_LEN} bytes (COEF 0x10..0x21, PRS_CFG, "
            f"TMP_CFG, COEF_SRCE), got {len(block)}"
        )
    b = bytes(block)
    prs_cfg, tmp_cfg, coef_srce = b[18], b[19], b[20]
    pm_prc, tmp_prc = prs_cfg & 0x0F, tmp_cfg & 0x0F
    if pm_prc > 7 or tmp_prc > 7:
        raise ValueError(
            f"DPS310 oversampling code out of range (PM_PRC {pm_prc}, TMP_PRC {tmp_prc}; "
            "allowed 0..7 for x1..x128)"
        )
    tmp_ext = bool(tmp_cfg & 0x80)
    if tmp_ext != bool(coef_srce & 0x80):
        raise ValueError(
            f"DPS310 measures temperature with the {'external' if tmp_ext else 'internal'} sensor "
            f"but its coefficients are for the {'external' if coef_srce & 0x80 else 'internal'} one "
            "(TMP_CFG bit 7 must equal COEF_SRCE bit 7)"
        )
    c0, c1, c00, c10, c01, c11, c20, c21, c30 = parse_coefficients(b[:COEF_LEN])
    return Dps310Calibration(c0, c1, c00, c10, c01, c11, c20, c21, c30,
                             kp=SCALE_FACTORS[pm_prc], kt=SCALE_FACTORS[tmp_prc], tmp_ext=tmp_ext)


def unpack_raw(raw: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(P_raw, T_raw) signed 24-bit counts from registers 0x00..0x05 (big-endian)."""
    w = raw_rows(raw, RAW_LEN, "DPS310")
    pressure = (w[:, 0] << 16) | (w[:, 1] << 8) | w[:, 2]
    temperature = (w[:, 3] << 16) | (w[:, 4] << 8) | w[:, 5]
    pressure = np.where(pressure & 0x800000, pressure - 0x1000000, pressure)
    temperature = np.where(temperature & 0x800000, temperature - 0x1000000, temperature)
    return pressure, temperature


def compensate(
    raw_pressure: npt.ArrayLike,
    raw_temperature: npt.ArrayLike,
    cal: Dps310Calibration,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(pressure_pa, temperature_k) in float64 from signed raw counts (broadcast)."""
    t_sc = np.asarray(raw_temperature, dtype=np.float64) / float(cal.kt)
    p_sc = np.asarray(raw_pressure, dtype=np.float64) / float(cal.kp)
    temperature_c = float(cal.c0) * 0.5 + float(cal.c1) * t_sc
    pressure = (float(cal.c00)
                + p_sc * (float(cal.c10) + p_sc * (float(cal.c20) + p_sc * float(cal.c30)))
                + t_sc * float(cal.c01)
                + t_sc * p_sc * (float(cal.c11) + p_sc * float(cal.c21)))
    return (np.asarray(pressure, dtype=np.float64),
            np.asarray(temperature_c + ZERO_C_IN_K, dtype=np.float64))


def make_compensator(block: bytes) -> Compensator:
    """raw (n, 6) uint8 -> (pressure_pa, temperature_k), for leakmon.sensors."""
    return bind_compensator(unpack_raw, compensate, parse_calibration(block))
