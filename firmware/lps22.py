"""ST LPS22HB / LPS22HH barometer driver: raw counts only, no float maths.

The chip compensates on-die; the node streams the 5 output bytes (0x28..0x2C:
pressure s24 in 1/4096 hPa, temperature s16 in 1/100 deg C) and the host
converts them (leakmon.sensors.lps22). ``calib`` is 2 bytes: WHO_AM_I and
the CTRL_REG1 value written, so a recording says which chip and settings made it.

Defaults suit a slow leak sampled at ~10 Hz: continuous mode at 75 Hz with the
low-pass filter at ODR/20 (3.75 Hz), just under the 5 Hz Nyquist limit of a
10 Hz read-out. Each sample then averages several conversions (less noise, no
aliasing) while samples 100 ms apart stay nearly independent for the host's
regression. BDU keeps the pressure bytes of one read from two conversions.
LPS22HH: low-noise mode too (allowed below 100 Hz).
"""

import time

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Registers (LPS22HB DocID027083 / LPS22HH DS12503, section 9)
_WHO_AM_I = const(0x0F)
_CTRL_REG1 = const(0x10)
_CTRL_REG2 = const(0x11)
_STATUS = const(0x27)
_PRESS_OUT_XL = const(0x28)

_ID_LPS22HB = const(0xB1)
_ID_LPS22HH = const(0xB3)

# CTRL_REG1 bits
_EN_LPFP = const(0x08)
_LPFP_CFG = const(0x04)
_BDU = const(0x02)
# CTRL_REG2 bits
_BOOT = const(0x80)
_IF_ADD_INC = const(0x10)
_SWRESET = const(0x04)
_LOW_NOISE_EN = const(0x02)  # LPS22HH only
# STATUS bits
_P_DA = const(0x01)
_T_DA = const(0x02)

_RESET_TRIES = const(10)
_POLL_MS = const(1)
_READY_TRIES = const(600)  # x 2 ms: the first conversion at the slowest ODR (1 Hz) fits
_READY_POLL_MS = const(2)

# Wire chip codes (the CHIP_* values of wire.py).
CHIP_LPS22HB = const(6)
CHIP_LPS22HH = const(7)

# Output data rate codes (CTRL_REG1 bits 6:4).
ODR_1_HZ = const(1)
ODR_10_HZ = const(2)
ODR_25_HZ = const(3)
ODR_50_HZ = const(4)
ODR_75_HZ = const(5)
ODR_100_HZ = const(6)  # LPS22HH only
ODR_200_HZ = const(7)  # LPS22HH only

# Low-pass filter on pressure: bandwidth ODR/2 (off), ODR/9, ODR/20.
LPF_OFF = const(0)
LPF_ODR_9 = const(2)
LPF_ODR_20 = const(3)

_MAX_ODR_HB = const(5)
_MAX_LOW_NOISE_ODR = const(5)


class LPS22:
    """One LPS22HB or LPS22HH on an I2C bus, in continuous mode, read as raw counts."""

    RAW_SIZE = 5

    def __init__(self, i2c, address=0x5D, odr=ODR_75_HZ, lpf=LPF_ODR_20):
        if not ODR_1_HZ <= odr <= ODR_200_HZ:
            raise ValueError("odr must be 1..7 (1, 10, 25, 50, 75 Hz; 100, 200 Hz on LPS22HH only)")
        if lpf not in (LPF_OFF, LPF_ODR_9, LPF_ODR_20):
            raise ValueError("lpf must be 0 (off), 2 (ODR/9) or 3 (ODR/20)")
        self.i2c = i2c
        self.address = address
        self._b1 = bytearray(1)

        who = self._read_u8(_WHO_AM_I)
        if who == _ID_LPS22HB:
            self.chip = CHIP_LPS22HB
        elif who == _ID_LPS22HH:
            self.chip = CHIP_LPS22HH
        else:
            raise OSError("no LPS22HB/LPS22HH at 0x%02x: WHO_AM_I 0x%02x (want 0xb1 or 0xb3)"
                          % (address, who))
        if self.chip == CHIP_LPS22HB and odr > _MAX_ODR_HB:
            raise ValueError("odr must be 1..5 on an LPS22HB (1, 10, 25, 50, 75 Hz)")
        self.chip_id = who

        self._soft_reset()
        ctrl2 = _IF_ADD_INC  # burst reads of 0x28..0x2C need auto-increment
        if self.chip == CHIP_LPS22HH and odr <= _MAX_LOW_NOISE_ODR:
            ctrl2 |= _LOW_NOISE_EN  # may only change in power-down: before the ODR
        self._write_u8(_CTRL_REG2, ctrl2)
        ctrl1 = (odr << 4) | (lpf << 2) | _BDU
        self._write_u8(_CTRL_REG1, ctrl1)
        if self._read_u8(_CTRL_REG1) != ctrl1:
            raise OSError("LPS22 at 0x%02x: CTRL_REG1 reads 0x%02x after writing 0x%02x"
                          % (address, self._b1[0], ctrl1))
        self.calib = bytes((who, ctrl1))
        self._wait_ready()

    def read_raw_into(self, buf):
        """Fill buf with the 5 output bytes: pressure s24 then temperature s16, LE.

        Allocates nothing: safe under micropython.heap_lock().
        """
        self.i2c.readfrom_mem_into(self.address, _PRESS_OUT_XL, buf)

    def _soft_reset(self):
        self._write_u8(_CTRL_REG2, _SWRESET | _IF_ADD_INC)
        for _ in range(_RESET_TRIES):
            time.sleep_ms(_POLL_MS)
            try:
                if not self._read_u8(_CTRL_REG2) & (_SWRESET | _BOOT):
                    return
            except OSError:
                pass  # the chip may NACK while it restarts
        raise OSError("LPS22 at 0x%02x: soft reset not done after %d ms"
                      % (self.address, _RESET_TRIES * _POLL_MS))

    def _wait_ready(self):
        for _ in range(_READY_TRIES):
            if (self._read_u8(_STATUS) & (_P_DA | _T_DA)) == (_P_DA | _T_DA):
                return
            time.sleep_ms(_READY_POLL_MS)
        raise OSError("LPS22 at 0x%02x: no data %d ms after start"
                      % (self.address, _READY_TRIES * _READY_POLL_MS))

    def _read_u8(self, reg):
        self.i2c.readfrom_mem_into(self.address, reg, self._b1)
        return self._b1[0]

    def _write_u8(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.address, reg, self._b1)
