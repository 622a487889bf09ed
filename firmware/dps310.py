"""Infineon DPS310 barometer driver: raw counts only, no float maths.

Streamed per sample (RAW_SIZE = 6): registers 0x00..0x05, PSR_B2, PSR_B1,
PSR_B0, TMP_B2, TMP_B1, TMP_B0: pressure then temperature, each a signed 24-bit
big-endian count.

Calibration block (self.calib, 21 bytes), everything the host needs:

    bytes 0..17   COEF registers 0x10..0x21 raw (c0, c1 s12; c00, c10 s20;
                  c01, c11, c20, c21, c30 s16)
    byte  18      PRS_CFG (0x06) as read back: PM_PRC (bits 3..0) picks kP
    byte  19      TMP_CFG (0x07) as read back: TMP_PRC picks kT; bit 7 TMP_EXT
    byte  20      COEF_SRCE (0x28): bit 7 says which temperature sensor the
                  coefficients were trimmed with (TMP_EXT is set to match)

The host compensates in float64 (leakmon.sensors.dps310).

Defaults suit a slow leak sampled at ~10 Hz: continuous ("background") mode,
pressure x32 at 16 Hz and temperature x2 at 16 Hz, FIFO off, so each read of
0x00..0x05 is one burst of the latest pair and a 10 Hz reader never sees the
same conversion twice. The datasheet's budget (rate x conversion time summed
over P and T below 1 s; Infineon's calcBusyTime) is 851 + 83 ms here. Pressure
x32 needs P_SHIFT in CFG_REG (any rate above x8 does).

Start-up applies the well-known fix for parts with a bad temperature fuse
(Infineon's correctTemp, Adafruit's _correct_temp): 0xA5 -> 0x0E, 0x96 -> 0x0F,
0x02 -> 0x62, 0 -> 0x0E, 0 -> 0x0F, after every reset. Both drivers then take
one temperature reading only to refresh their host-side value; continuous mode
here measures temperature anyway.
"""

from i2cdev import I2CDevice

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Registers (datasheet section 7)
_PSR_B2 = const(0x00)
_PRS_CFG = const(0x06)
_TMP_CFG = const(0x07)
_MEAS_CFG = const(0x08)
_CFG_REG = const(0x09)
_RESET = const(0x0C)
_PRODUCT_ID = const(0x0D)
_FUSE_KEY_0 = const(0x0E)
_FUSE_KEY_1 = const(0x0F)
_COEF_0 = const(0x10)
_COEF_SRCE = const(0x28)
_FUSE_FIX = const(0x62)

_ID_DPS310 = const(0x10)  # REV_ID 1, PROD_ID 0
_COEF_LEN = const(18)
_CALIB_LEN = const(21)

_SOFT_RESET_FIFO_FLUSH = const(0x89)
_COEF_RDY = const(0x80)
_SENSOR_RDY = const(0x40)
_TMP_RDY = const(0x20)
_PRS_RDY = const(0x10)
_CONT_BOTH = const(0x07)  # background mode, pressure and temperature
_TMP_EXT = const(0x80)
_T_SHIFT = const(0x08)
_P_SHIFT = const(0x04)

_RESET_TRIES = const(25)  # coefficients are ready ~40 ms after a reset
_POLL_MS = const(2)

# Wire chip code (CHIP_DPS310 of wire.py).
CHIP_DPS310 = const(5)

# Oversampling (PM_PRC / TMP_PRC) codes: 2**n samples, x1 .. x128.
PRC_X1 = const(0)
PRC_X2 = const(1)
PRC_X8 = const(3)
PRC_X32 = const(5)
PRC_X128 = const(7)

# Measurement rate (PM_RATE / TMP_RATE) codes: 2**n per second, 1 .. 128 Hz.
RATE_16_HZ = const(4)
RATE_MAX = const(7)


def busy_time_us(rate, prc):
    """Time per second the chip spends converting one quantity (calcBusyTime)."""
    return ((20 << rate) + (16 << (prc + rate))) * 100


class DPS310(I2CDevice):
    """One DPS310 on an I2C bus, in continuous mode, read as raw counts."""

    RAW_SIZE = 6

    def __init__(self, i2c, address=0x77, prs_prc=PRC_X32, prs_rate=RATE_16_HZ,
                 tmp_prc=PRC_X2, tmp_rate=RATE_16_HZ):
        _check_settings(prs_prc, prs_rate, tmp_prc, tmp_rate)
        I2CDevice.__init__(self, i2c, address)
        self._identify(_PRODUCT_ID, (_ID_DPS310,), (CHIP_DPS310,), "DPS310", "product id")
        self._soft_reset(_RESET, _SOFT_RESET_FIFO_FLUSH, _MEAS_CFG, _SENSOR_RDY | _COEF_RDY,
                         _SENSOR_RDY | _COEF_RDY, _RESET_TRIES, _POLL_MS)
        self._fix_temperature_fuse()
        buf = bytearray(_CALIB_LEN)
        i2c.readfrom_mem_into(address, _COEF_0, memoryview(buf)[:_COEF_LEN])
        coef_srce = self._read_u8(_COEF_SRCE)

        self._write_u8(_PRS_CFG, (prs_rate << 4) | prs_prc)
        self._write_u8(_TMP_CFG, (coef_srce & _TMP_EXT) | (tmp_rate << 4) | tmp_prc)
        shift = (_P_SHIFT if prs_prc > PRC_X8 else 0) | (_T_SHIFT if tmp_prc > PRC_X8 else 0)
        self._write_u8(_CFG_REG, shift)  # interrupts and FIFO off
        # Read the configuration back: the host picks kP/kT from what the chip holds.
        buf[18] = self._read_u8(_PRS_CFG)
        buf[19] = self._read_u8(_TMP_CFG)
        buf[20] = coef_srce
        if buf[18] & 0x7F != (prs_rate << 4) | prs_prc or buf[19] & 0x7F != (tmp_rate << 4) | tmp_prc:
            raise OSError("DPS310 at 0x%02x: configuration not taken (PRS_CFG 0x%02x, TMP_CFG 0x%02x)"
                          % (address, buf[18], buf[19]))
        self.calib = bytes(buf)

        self._write_u8(_MEAS_CFG, _CONT_BOTH)
        slowest_ms = 1000 >> min(prs_rate, tmp_rate)
        self._wait_bits(_MEAS_CFG, _TMP_RDY | _PRS_RDY, _TMP_RDY | _PRS_RDY, 2 * slowest_ms // _POLL_MS + 10,
                        _POLL_MS, "no data after start, waited")

    def set_oversampling(self, osr_p, osr_t):
        """New precision codes (PRC_*, 0..7 = x1..x128) at the default rates; the
        calibration block changes with them (it carries PRS_CFG/TMP_CFG)."""
        DPS310.__init__(self, self.i2c, self.address, prs_prc=osr_p, tmp_prc=osr_t)

    def read_raw_into(self, buf):
        """Fill buf with the 6 data bytes 0x00..0x05: pressure then temperature.

        Allocates nothing: safe under micropython.heap_lock().
        """
        self.i2c.readfrom_mem_into(self.address, _PSR_B2, buf)

    def _fix_temperature_fuse(self):
        self._write_u8(_FUSE_KEY_0, 0xA5)
        self._write_u8(_FUSE_KEY_1, 0x96)
        self._write_u8(_FUSE_FIX, 0x02)
        self._write_u8(_FUSE_KEY_0, 0x00)
        self._write_u8(_FUSE_KEY_1, 0x00)


def _check_settings(prs_prc, prs_rate, tmp_prc, tmp_rate):
    if not PRC_X1 <= prs_prc <= PRC_X128:
        raise ValueError("prs_prc must be 0..7 (x1, x2, x4, x8, x16, x32, x64, x128)")
    if not PRC_X1 <= tmp_prc <= PRC_X128:
        raise ValueError("tmp_prc must be 0..7 (x1, x2, x4, x8, x16, x32, x64, x128)")
    if not 0 <= prs_rate <= RATE_MAX:
        raise ValueError("prs_rate must be 0..7 (1, 2, 4, 8, 16, 32, 64, 128 Hz)")
    if not 0 <= tmp_rate <= RATE_MAX:
        raise ValueError("tmp_rate must be 0..7 (1, 2, 4, 8, 16, 32, 64, 128 Hz)")
    busy = busy_time_us(prs_rate, prs_prc) + busy_time_us(tmp_rate, tmp_prc)
    if busy >= 1000000:
        raise ValueError("DPS310 cannot convert that fast: pressure rate %d x%d plus temperature "
                         "rate %d x%d need %d ms of every second (must be under 1000)"
                         % (1 << prs_rate, 1 << prs_prc, 1 << tmp_rate, 1 << tmp_prc, busy // 1000))
