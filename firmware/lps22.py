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

from i2cdev import I2CDevice

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


class LPS22(I2CDevice):
    """One LPS22HB or LPS22HH on an I2C bus, in continuous mode, read as raw counts."""

    RAW_SIZE = 5

    def __init__(self, i2c, address=0x5D, odr=ODR_75_HZ, lpf=LPF_ODR_20):
        if not ODR_1_HZ <= odr <= ODR_200_HZ:
            raise ValueError("odr must be 1..7 (1, 10, 25, 50, 75 Hz; 100, 200 Hz on LPS22HH only)")
        if lpf not in (LPF_OFF, LPF_ODR_9, LPF_ODR_20):
            raise ValueError("lpf must be 0 (off), 2 (ODR/9) or 3 (ODR/20)")
        I2CDevice.__init__(self, i2c, address)
        self._identify(_WHO_AM_I, (_ID_LPS22HB, _ID_LPS22HH), (CHIP_LPS22HB, CHIP_LPS22HH),
                       "LPS22HB/LPS22HH", "WHO_AM_I")
        if self.chip == CHIP_LPS22HB and odr > _MAX_ODR_HB:
            raise ValueError("odr must be 1..5 on an LPS22HB (1, 10, 25, 50, 75 Hz)")
        self._soft_reset(_CTRL_REG2, _SWRESET | _IF_ADD_INC, _CTRL_REG2, _SWRESET | _BOOT, 0,
                         _RESET_TRIES, _POLL_MS)
        ctrl2 = _IF_ADD_INC  # burst reads of 0x28..0x2C need auto-increment
        if self.chip == CHIP_LPS22HH and odr <= _MAX_LOW_NOISE_ODR:
            ctrl2 |= _LOW_NOISE_EN  # may only change in power-down: before the ODR
        self._write_u8(_CTRL_REG2, ctrl2)
        ctrl1 = (odr << 4) | (lpf << 2) | _BDU
        self._write_checked(_CTRL_REG1, ctrl1, "CTRL_REG1")
        self.calib = bytes((self.chip_id, ctrl1))
        self._wait_bits(_STATUS, _P_DA | _T_DA, _P_DA | _T_DA, _READY_TRIES, _READY_POLL_MS,
                        "no data after start, waited")

    def read_raw_into(self, buf):
        """Fill buf with the 5 output bytes: pressure s24 then temperature s16, LE.

        Allocates nothing: safe under micropython.heap_lock().
        """
        self.i2c.readfrom_mem_into(self.address, _PRESS_OUT_XL, buf)

