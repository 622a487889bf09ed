"""ST LPS22HB / LPS22HH conversion, vectorized over numpy arrays.

These chips compensate on-die: the output registers already hold pressure in
1/4096 hPa (signed 24-bit) and temperature in 1/100 deg C (signed 16-bit), per
both datasheets (DocID027083 LPS22HB, DS12503 LPS22HH). There are no
coefficients; the 2-byte "calibration" block the node sends records which chip
and which configuration produced the samples:

====== =================================================================
byte   meaning
====== =================================================================
0      WHO_AM_I as read: 0xB1 LPS22HB, 0xB3 LPS22HH
1      CTRL_REG1 as written: ODR (bits 6:4), EN_LPFP/LPFP_CFG (3:2), BDU (1)
====== =================================================================

The virtual board's register model (``leakmon.sim.vboard.lps22_model``) performs the
same float operations, so the two agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leakmon.sensors.base import Compensator, bind_compensator, raw_rows

RAW_LEN = 5  # PRESS_OUT_XL, PRESS_OUT_L, PRESS_OUT_H, TEMP_OUT_L, TEMP_OUT_H (0x28..0x2C)
CALIB_LEN = 2
WHO_AM_I_LPS22HB = 0xB1
WHO_AM_I_LPS22HH = 0xB3

PA_PER_HPA = 100.0
COUNTS_PER_HPA = 4096.0
COUNTS_PER_DEG_C = 100.0
ZERO_C_IN_K = 273.15

# ODR field of CTRL_REG1 -> Hz (codes 6 and 7 exist on the LPS22HH only).
ODR_HZ = {0: 0.0, 1: 1.0, 2: 10.0, 3: 25.0, 4: 50.0, 5: 75.0, 6: 100.0, 7: 200.0}


@dataclass(frozen=True)
class Lps22Config:
    """What the calibration block says about the chip and its settings."""

    who_am_i: int
    ctrl_reg1: int

    @property
    def chip(self) -> str:
        return "LPS22HB" if self.who_am_i == WHO_AM_I_LPS22HB else "LPS22HH"

    @property
    def odr_hz(self) -> float:
        return ODR_HZ[(self.ctrl_reg1 >> 4) & 7]

    @property
    def lpf_divider(self) -> int:
        """Low-pass bandwidth as ODR / n: 2 (filter off), 9 or 20."""
        if not self.ctrl_reg1 & 0x08:
            return 2
        return 20 if self.ctrl_reg1 & 0x04 else 9


def parse_calibration(block: bytes) -> Lps22Config:
    """The 2-byte block (WHO_AM_I, CTRL_REG1) the node sends for an LPS22."""
    if len(block) != CALIB_LEN:
        raise ValueError(
            f"LPS22 calibration block must be {CALIB_LEN} bytes (WHO_AM_I, CTRL_REG1), got {len(block)}"
        )
    who, ctrl1 = bytes(block)
    if who not in (WHO_AM_I_LPS22HB, WHO_AM_I_LPS22HH):
        raise ValueError(f"LPS22 WHO_AM_I must be 0xb1 (LPS22HB) or 0xb3 (LPS22HH), got 0x{who:02x}")
    return Lps22Config(who, ctrl1)


def unpack_raw(raw: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(raw_pressure s24, raw_temperature s16) from registers 0x28..0x2C.

    ``raw`` is an (N, 5) uint8 array or a flat buffer of N*5 bytes, little-endian.
    """
    w = raw_rows(raw, RAW_LEN, "LPS22")
    p = w[:, 0] | (w[:, 1] << 8) | (w[:, 2] << 16)
    p = p - ((p & 0x800000) << 1)  # sign-extend 24 bits
    t = w[:, 3] | (w[:, 4] << 8)
    t = t - ((t & 0x8000) << 1)
    return p, t


def compensate(
    raw_pressure: npt.ArrayLike, raw_temperature: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(pressure_pa, temperature_k) in float64 from signed counts.

    ``raw * 100 / 4096`` is exact in binary floating point (an integer times 100
    stays below 2^53, and 4096 is a power of two).
    """
    rp = np.asarray(raw_pressure, dtype=np.float64)
    rt = np.asarray(raw_temperature, dtype=np.float64)
    pressure = rp * PA_PER_HPA / COUNTS_PER_HPA
    temperature = rt / COUNTS_PER_DEG_C + ZERO_C_IN_K
    return np.asarray(pressure, dtype=np.float64), np.asarray(temperature, dtype=np.float64)


def make_compensator(block: bytes) -> Compensator:
    """raw (n, 5) uint8 -> (pressure_pa, temperature_k), for leakmon.sensors."""
    parse_calibration(block)  # validates; the conversion needs no coefficients
    return bind_compensator(unpack_raw, compensate)
