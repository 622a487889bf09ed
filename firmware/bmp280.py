"""Bosch BMP280 / BME280 barometer driver: raw counts only, no float maths.

One class for both chips (chip id 0x58 -> wire code 3, 0x60 -> wire code 4);
their pressure and temperature paths are the same silicon.

Streamed per sample (RAW_SIZE = 6): registers 0xF7..0xFC, press_msb, press_lsb,
press_xlsb, temp_msb, temp_lsb, temp_xlsb; each value is 20 bits, msb << 12 |
lsb << 4 | xlsb >> 4. The BME280's humidity is switched off (osrs_h = skipped)
and its registers 0xFD..0xFE are not read: leak monitoring needs P and T, and
two more bytes per sample would buy nothing.

Calibration block (self.calib, 24 bytes, the same for both chips): registers
0x88..0x9F raw, dig_T1 (u16), dig_T2, dig_T3, dig_P1 (u16), dig_P2..dig_P9
(s16), little-endian. The BME280's humidity trimming (0xA1, 0xE1..0xE7) is not
sent since humidity is not measured. The host compensates in float64
(leakmon.sensors.bmp280).

Defaults suit a slow leak sampled at ~10 Hz: pressure x16, temperature x2 (the
datasheet's "ultra high resolution" pair), IIR off so successive samples stay
independent for the host's regression, normal mode with 0.5 ms standby, so a
fresh conversion is ready every ~44 ms (at most 43.2 ms measuring) and a 10 Hz
read never sees the same conversion twice. Each sample is one 6-byte burst read.
"""

import time

from i2cdev import I2CDevice

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Registers (BMP280 datasheet section 4.3, BME280 section 5.4)
_CALIB_0 = const(0x88)
_CHIP_ID = const(0xD0)
_RESET = const(0xE0)
_CTRL_HUM = const(0xF2)  # BME280 only; latched by the next write to CTRL_MEAS
_STATUS = const(0xF3)
_CTRL_MEAS = const(0xF4)
_CONFIG = const(0xF5)
_DATA_0 = const(0xF7)

_ID_BMP280 = const(0x58)
_ID_BME280 = const(0x60)
_CALIB_LEN = const(24)

_SOFT_RESET = const(0xB6)
_IM_UPDATE = const(0x01)  # status: NVM data being copied
_MODE_NORMAL = const(0x03)
_RESET_PRESS_MSB = const(0x80)  # data registers read 0x80000 until a conversion

_RESET_TRIES = const(10)
_POLL_MS = const(2)

# Wire chip codes (the CHIP_* values of wire.py).
CHIP_BMP280 = const(3)
CHIP_BME280 = const(4)

# Oversampling codes for osrs_p / osrs_t (0 would skip the measurement).
OSRS_X1 = const(1)
OSRS_X2 = const(2)
OSRS_X4 = const(3)
OSRS_X8 = const(4)
OSRS_X16 = const(5)

# Standby between conversions in normal mode, t_sb codes 0..7: 0.5, 62.5, 125, 250,
# 500, 1000 ms, then 2000/4000 ms on the BMP280 but 10/20 ms on the BME280.
T_SB_0_5_MS = const(0)
T_SB_MAX = const(7)

# IIR filter codes: off, then coefficients 2, 4, 8, 16.
IIR_OFF = const(0)
IIR_MAX = const(4)


def meas_time_max_us(osrs_p, osrs_t):
    """Longest conversion time (datasheet 3.8.1 / BME280 9.1), humidity off."""
    return 1250 + 2300 * ((1 << osrs_t) >> 1) + 2300 * ((1 << osrs_p) >> 1) + 575


class BMP280(I2CDevice):
    """One BMP280 or BME280 on an I2C bus, in normal mode, read as raw counts."""

    RAW_SIZE = 6

    def __init__(self, i2c, address=0x77, osrs_p=OSRS_X16, osrs_t=OSRS_X2,
                 t_sb=T_SB_0_5_MS, iir=IIR_OFF):
        _check_settings(osrs_p, osrs_t, t_sb, iir)
        I2CDevice.__init__(self, i2c, address)
        self._identify(_CHIP_ID, (_ID_BMP280, _ID_BME280), (CHIP_BMP280, CHIP_BME280), "BMP280/BME280")
        # Start-up takes 2 ms; then IM_UPDATE clears once the NVM is copied.
        self._soft_reset(_RESET, _SOFT_RESET, _STATUS, _IM_UPDATE, 0, _RESET_TRIES, _POLL_MS)
        buf = bytearray(_CALIB_LEN)
        i2c.readfrom_mem_into(address, _CALIB_0, buf)
        self.calib = bytes(buf)

        # CONFIG is only sure to be taken in sleep mode, so before CTRL_MEAS;
        # CTRL_HUM latches on the CTRL_MEAS write that follows it.
        self._write_u8(_CONFIG, (t_sb << 5) | (iir << 2))
        if self.chip == CHIP_BME280:
            self._write_u8(_CTRL_HUM, 0)  # humidity skipped
        ctrl = (osrs_t << 5) | (osrs_p << 2) | _MODE_NORMAL
        self._write_checked(_CTRL_MEAS, ctrl, "CTRL_MEAS")
        self._wait_first_data(meas_time_max_us(osrs_p, osrs_t) // 1000 // _POLL_MS + 10)

    def set_oversampling(self, osr_p, osr_t):
        """New OSRS codes (1..5 = x1..x16) for pressure and temperature: the chip is set
        up again from a soft reset with the other settings at their defaults."""
        BMP280.__init__(self, self.i2c, self.address, osr_p, osr_t)

    def read_raw_into(self, buf):
        """Fill buf with the 6 data bytes 0xF7..0xFC: pressure then temperature.

        Allocates nothing: safe under micropython.heap_lock().
        """
        self.i2c.readfrom_mem_into(self.address, _DATA_0, buf)

    def _wait_first_data(self, tries):
        # No data-ready flag on this chip: the data registers hold their reset
        # value 0x80000 until the first conversion ends.
        buf = bytearray(3)
        for _ in range(tries):
            self.i2c.readfrom_mem_into(self.address, _DATA_0, buf)
            if buf[0] != _RESET_PRESS_MSB or buf[1] or buf[2]:
                return
            time.sleep_ms(_POLL_MS)
        raise OSError("BMP280 at 0x%02x: no data %d ms after start"
                      % (self.address, tries * _POLL_MS))


def _check_settings(osrs_p, osrs_t, t_sb, iir):
    if not OSRS_X1 <= osrs_p <= OSRS_X16:
        raise ValueError("osrs_p must be 1..5 (x1, x2, x4, x8, x16)")
    if not OSRS_X1 <= osrs_t <= OSRS_X16:
        raise ValueError("osrs_t must be 1..5 (x1, x2, x4, x8, x16)")
    if not 0 <= t_sb <= T_SB_MAX:
        raise ValueError("t_sb must be 0..7 (0.5, 62.5, 125, 250, 500, 1000 ms, "
                         "then 2000/4000 ms on a BMP280 or 10/20 ms on a BME280)")
    if not 0 <= iir <= IIR_MAX:
        raise ValueError("iir must be 0..4 (off, 2, 4, 8, 16)")
