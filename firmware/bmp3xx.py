"""Bosch BMP388 / BMP390 barometer driver: raw counts only, no float maths.

The node streams the 6 data bytes and the 21-byte calibration block; the host
compensates them in float64 (leakmon.sensors.bmp3). Defaults suit a slow
leak: pressure x32, temperature x2, 12.5 Hz, IIR off so successive samples stay
independent for the host's regression.
"""

from i2cdev import I2CDevice

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Registers (datasheet section 4, bmp3_defs.h)
_CHIP_ID = const(0x00)
_ERR_REG = const(0x02)
_STATUS = const(0x03)
_DATA_0 = const(0x04)
_PWR_CTRL = const(0x1B)
_OSR = const(0x1C)
_ODR = const(0x1D)
_CONFIG = const(0x1F)
_CALIB_0 = const(0x31)
_CMD = const(0x7E)

_ID_BMP388 = const(0x50)
_ID_BMP390 = const(0x60)
_CALIB_LEN = const(21)

_SOFT_RESET = const(0xB6)
_ERR_FATAL = const(0x01)
_ERR_CMD = const(0x02)
_ERR_CONF = const(0x04)
_CMD_RDY = const(0x10)
_DRDY_BOTH = const(0x60)  # drdy_press | drdy_temp
_PRESS_TEMP_NORMAL = const(0x33)  # press_en | temp_en | mode = normal
_PRESS_TEMP_SLEEP = const(0x03)  # press_en | temp_en | mode = sleep

_RESET_TRIES = const(10)
_POLL_MS = const(2)

# Wire chip codes (the CHIP_* values of wire.py).
CHIP_BMP388 = const(1)
CHIP_BMP390 = const(2)

# Oversampling codes for osr_p / osr_t: x1, x2, x4, x8, x16, x32.
OSR_X1 = const(0)
OSR_X2 = const(1)
OSR_X4 = const(2)
OSR_X8 = const(3)
OSR_X16 = const(4)
OSR_X32 = const(5)

# Output data rate: odr_sel n gives a period of 5 ms << n (0 = 200 Hz .. 17 = 1/655 s).
ODR_200_HZ = const(0)
ODR_25_HZ = const(3)
ODR_12_5_HZ = const(4)
ODR_MAX_SEL = const(17)

# IIR filter codes: off, then coefficients 1, 3, 7, 15, 31, 63, 127.
IIR_OFF = const(0)
IIR_MAX = const(7)


def meas_time_us(osr_p, osr_t):
    """Conversion time with pressure and temperature enabled (bmp3.c formula)."""
    return 234 + 392 + (2000 << osr_p) + 313 + (2000 << osr_t)


def min_odr_sel(osr_p, osr_t):
    """Fastest odr_sel whose period exceeds the conversion time."""
    t = meas_time_us(osr_p, osr_t)
    sel = 0
    while (5000 << sel) <= t:
        sel += 1
    return sel


class BMP3XX(I2CDevice):
    """One BMP388/BMP390 on an I2C bus, in normal mode, read as raw counts."""

    RAW_SIZE = 6

    def __init__(self, i2c, address=0x77, osr_p=OSR_X32, osr_t=OSR_X2,
                 odr_sel=ODR_12_5_HZ, iir=IIR_OFF):
        _check_settings(osr_p, osr_t, odr_sel, iir)
        I2CDevice.__init__(self, i2c, address)
        self._identify(_CHIP_ID, (_ID_BMP388, _ID_BMP390), (CHIP_BMP388, CHIP_BMP390), "BMP388/BMP390")
        self._soft_reset(_CMD, _SOFT_RESET, _STATUS, _CMD_RDY, _CMD_RDY, _RESET_TRIES, _POLL_MS)
        if self._read_u8(_ERR_REG) & _ERR_CMD:
            raise OSError("BMP3XX at 0x%02x: soft reset command rejected" % address)
        buf = bytearray(_CALIB_LEN)
        i2c.readfrom_mem_into(address, _CALIB_0, buf)
        self.calib = bytes(buf)

        self.configure(osr_p, osr_t, odr_sel, iir)

    def configure(self, osr_p, osr_t, odr_sel, iir):
        """Sleep, write oversampling, rate and filter, then sample in normal mode again."""
        _check_settings(osr_p, osr_t, odr_sel, iir)
        self._write_u8(_PWR_CTRL, _PRESS_TEMP_SLEEP)
        self._write_u8(_OSR, osr_p | (osr_t << 3))
        self._write_u8(_ODR, odr_sel)
        self._write_u8(_CONFIG, iir << 1)
        self._write_u8(_PWR_CTRL, _PRESS_TEMP_NORMAL)
        err = self._read_u8(_ERR_REG)
        if err & (_ERR_CONF | _ERR_FATAL):
            raise OSError("BMP3XX at 0x%02x: configuration rejected (ERR_REG 0x%02x)"
                          % (self.address, err))
        self.osr_p, self.osr_t, self.odr_sel, self.iir = osr_p, osr_t, odr_sel, iir
        self._wait_bits(_STATUS, _DRDY_BOTH, _DRDY_BOTH, meas_time_us(osr_p, osr_t) // 1000 // _POLL_MS + 10,
                        _POLL_MS, "no data after start, waited")

    def set_oversampling(self, osr_p, osr_t):
        """New oversampling codes (0..5 = x1..x32); the output rate slows down if it must."""
        self.configure(osr_p, osr_t, max(self.odr_sel, min_odr_sel(osr_p, osr_t)), self.iir)

    def read_raw_into(self, buf):
        """Fill buf with the 6 data bytes: pressure then temperature, 24-bit LE each.

        Allocates nothing: safe under micropython.heap_lock().
        """
        self.i2c.readfrom_mem_into(self.address, _DATA_0, buf)


def _check_settings(osr_p, osr_t, odr_sel, iir):
    if not 0 <= osr_p <= OSR_X32:
        raise ValueError("osr_p must be 0..5 (x1, x2, x4, x8, x16, x32)")
    if not 0 <= osr_t <= OSR_X32:
        raise ValueError("osr_t must be 0..5 (x1, x2, x4, x8, x16, x32)")
    if not 0 <= iir <= IIR_MAX:
        raise ValueError("iir must be 0..7 (off, 1, 3, 7, 15, 31, 63, 127)")
    lo = min_odr_sel(osr_p, osr_t)
    if not lo <= odr_sel <= ODR_MAX_SEL:
        raise ValueError("odr_sel must be %d..%d for osr_p=%d, osr_t=%d (period 5 ms << odr_sel)"
                         % (lo, ODR_MAX_SEL, osr_p, osr_t))
