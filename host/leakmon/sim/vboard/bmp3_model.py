# Register-level model of a Bosch BMP388 / BMP390 for the virtual board.
#
# Runs inside the MicroPython VM (and imports under CPython for tests), so it
# uses only math and struct. Reading the data registers 0x04..0x09 in normal
# mode takes a fresh measurement of the chamber: the true pressure and
# temperature plus noise and offset, turned into raw counts by inverting
# Bosch's floating-point compensation. The forward maths below performs the
# same float operations in the same order as leakmon.sensors.bmp3, so the
# host recovers the model's input to within one count of quantization.
#
# Not modelled: ODR timing (every read is a new conversion), the IIR filter,
# oversampling's effect on noise, FIFO, interrupts, sensor time.
import math
import struct

try:
    from . import regfile  # CPython, as leakmon.sim.vboard.bmp3_model
except ImportError:
    import regfile  # MicroPython (the board's path), or CPython with vboard/ on sys.path

# Registers
_CHIP_ID = 0x00
_REV_ID = 0x01
_ERR_REG = 0x02
_STATUS = 0x03
_DATA_0 = 0x04
_DATA_END = 0x0A  # one past the last data register (0x09)
_EVENT = 0x10
_INT_STATUS = 0x11
_PWR_CTRL = 0x1B
_OSR = 0x1C
_ODR = 0x1D
_CONFIG = 0x1F
_CALIB_0 = 0x31
_CMD = 0x7E

# Bits and values
_ERR_CMD = 0x02
_ERR_CONF = 0x04
_CMD_RDY = 0x10
_DRDY_PRESS = 0x20
_DRDY_TEMP = 0x40
_PRESS_EN = 0x01
_TEMP_EN = 0x02
_MODE_MASK = 0x30
_MODE_NORMAL = 0x30
_SOFT_RESET = 0xB6
_FIFO_FLUSH = 0xB0
_EXTMODE_EN_MIDDLE = 0x34

CHIP_IDS = {"BMP388": 0x50, "BMP390": 0x60}

# Writable configuration registers and their implemented bits (datasheet
# register map); writes elsewhere are ignored, as the silicon does.
_WRITE_MASKS = {0x15: 0xFF, 0x16: 0x01, 0x17: 0x1F, 0x18: 0x1F, 0x19: 0x7F, 0x1A: 0x07,
                _PWR_CTRL: 0x33, _OSR: 0x3F, _ODR: 0x1F, _CONFIG: 0x0E}

# Values after power-on or soft reset (everything else reads 0).
_RESET_VALUES = ((_STATUS, _CMD_RDY), (0x06, 0x80), (0x09, 0x80), (_EVENT, 0x01),
                 (0x15, 0x01), (0x17, 0x02), (0x18, 0x02), (0x19, 0x02), (_OSR, 0x02))

CALIB_FMT = "<HHbhhbbHHbbhbb"
CALIB_LEN = 21

# A real BMP388's calibration block (registers 0x31..0x45), as published in the
# tests of elixir-sensors/bmp3xx: par_t1 = 27427, par_t2 = 18776, par_t3 = -10,
# par_p1 = -164, ... par_p11 = -60.
DEFAULT_CALIB_HEX = "236b5849f65cffcef42300ea636e79f3f6aa4312c4"

ZERO_C_IN_K = 273.15
RAW_MAX = 0xFFFFFF
_NEWTON_STEPS = 30


# ---- Compensation maths (scalar twin of leakmon.sensors.bmp3) ----

def parse_calib(block):
    """Tuple (par_t1, par_t2, par_t3, par_p1 .. par_p11) of floats, scaled as bmp3.c."""
    if len(block) != CALIB_LEN:
        raise ValueError("BMP3 calibration block must be 21 bytes, got %d" % len(block))
    c = struct.unpack(CALIB_FMT, bytes(block))
    ld = math.ldexp  # exact scaling by powers of two
    return (ld(c[0], 8), ld(c[1], -30), ld(c[2], -48),
            ld(c[3] - 16384, -20), ld(c[4] - 16384, -29), ld(c[5], -32), ld(c[6], -37),
            ld(c[7], 3), ld(c[8], -6), ld(c[9], -8), ld(c[10], -15),
            ld(c[11], -48), ld(c[12], -48), ld(c[13], -65))


def t_lin(raw_t, cal):
    """Compensated temperature in deg C (Bosch's t_lin) from raw counts."""
    d1 = raw_t - cal[0]
    d2 = d1 * cal[1]
    return d2 + (d1 * d1) * cal[2]


def pressure_pa(raw_p, tl, cal):
    """Compensated pressure in Pa from raw counts and t_lin."""
    tl2 = tl * tl
    tl3 = tl * tl2
    up = float(raw_p)
    offset = cal[7] + cal[8] * tl + cal[9] * tl2 + cal[10] * tl3
    sens = up * (cal[3] + cal[4] * tl + cal[5] * tl2 + cal[6] * tl3)
    up2 = up * up
    up3 = up * up2
    quad = up2 * (cal[11] + cal[12] * tl) + up3 * cal[13]
    return offset + sens + quad


def temperature_counts(temperature_c, cal):
    """Raw temperature (unrounded) whose t_lin is temperature_c: the quadratic's root."""
    t2 = cal[1]
    t3 = cal[2]
    disc = t2 * t2 + 4.0 * t3 * temperature_c
    if disc < 0.0:  # beyond the parabola's vertex: no count gives this temperature
        disc = 0.0
    # Citardauq form: stable as t3 -> 0, picks the root near temperature_c / t2.
    return cal[0] + 2.0 * temperature_c / (t2 + math.sqrt(disc))


def pressure_counts(target_pa, tl, cal):
    """Raw pressure (unrounded) that compensates to target_pa at t_lin tl (Newton)."""
    tl2 = tl * tl
    tl3 = tl * tl2
    offset = cal[7] + cal[8] * tl + cal[9] * tl2 + cal[10] * tl3
    s = cal[3] + cal[4] * tl + cal[5] * tl2 + cal[6] * tl3
    q = cal[11] + cal[12] * tl
    c = cal[13]
    up = (target_pa - offset) / s
    for _ in range(_NEWTON_STEPS):
        f = offset + up * s + up * up * q + up * up * up * c - target_pa
        df = s + 2.0 * q * up + 3.0 * c * up * up
        if df == 0.0:
            break
        step = f / df
        up -= step
        if abs(step) < 1e-7:
            break
    return up


def _to_counts(x):
    """Round to an integer count and clip to 24 bits (NaN reads as 0)."""
    return regfile.round_clip(x, 0, RAW_MAX)


def raw_counts(pressure, temperature_k, cal):
    """(raw_p, raw_t) integer counts a chip would report for these conditions.

    The pressure is inverted at the t_lin of the *rounded* temperature count,
    which is what the host will compute it with.
    """
    raw_t = _to_counts(temperature_counts(temperature_k - ZERO_C_IN_K, cal))
    raw_p = _to_counts(pressure_counts(pressure, t_lin(raw_t, cal), cal))
    return raw_p, raw_t


def meas_time_ok(osr, odr):
    """Bosch's check: conversion time (us) must fit in the ODR period."""
    if odr > 0x11:
        return False
    meas_us = 234 + 392 + (2000 << (osr & 7)) + 313 + (2000 << ((osr >> 3) & 7))
    return meas_us < (5000 << odr)


# ---- The chip ----

class BMP3Model(regfile.RegisterModel):
    """BMP388/BMP390 on the virtual I2C bus: a 256-byte register file."""

    def __init__(self, chip, hw, cfg):
        # reset_busy_reads: status reads that show the chip busy (cmd_rdy = 0) after a soft reset.
        regfile.RegisterModel.__init__(self, chip, hw, cfg, ("BMP388", "BMP390"),
                                       noise_pa=0.3, noise_k=0.002, reset_busy_reads=1)
        self.chip_id = cfg.get("chip_id", CHIP_IDS[chip])
        self.calib = bytes.fromhex(cfg.get("calib", DEFAULT_CALIB_HEX))
        self.cal = parse_calib(self.calib)
        self.regs[_CHIP_ID] = self.chip_id
        self.regs[_REV_ID] = 0x01
        self.regs[_CALIB_0:_CALIB_0 + CALIB_LEN] = self.calib
        self._reset()
        self._busy = 0  # power-on: ready at once

    def _reset(self):
        r = self.regs
        for a in range(_ERR_REG, _CALIB_0):
            r[a] = 0
        for a, v in _RESET_VALUES:
            r[a] = v
        self._busy = self.reset_busy_reads

    # -- measurement --

    def measure(self):
        """Take one conversion of the chamber into the data registers."""
        p_meas, t_meas = self.sensed()
        raw_p, raw_t = raw_counts(p_meas, t_meas, self.cal)
        r = self.regs
        pwr = r[_PWR_CTRL]
        if pwr & _PRESS_EN:
            self.put_le(0x04, raw_p, 3)
            r[_STATUS] |= _DRDY_PRESS
        if pwr & _TEMP_EN:
            self.put_le(0x07, raw_t, 3)
            r[_STATUS] |= _DRDY_TEMP

    # -- bus interface --

    def read_into(self, reg, buf):
        r = self.regs
        n = len(buf)
        end = reg + n
        if reg < _DATA_END and end > _DATA_0 and (r[_PWR_CTRL] & _MODE_MASK) == _MODE_NORMAL:
            self.measure()
        if reg <= _STATUS < end:
            if self.busy_read():
                r[_STATUS] &= ~_CMD_RDY & 0xFF
            else:
                r[_STATUS] |= _CMD_RDY
        self.copy_out(reg, buf)
        # Clear-on-read flags.
        if reg <= _ERR_REG < end:
            r[_ERR_REG] &= ~(_ERR_CMD | _ERR_CONF) & 0xFF
        if reg <= _EVENT < end:
            r[_EVENT] = 0
        if reg <= _INT_STATUS < end:
            r[_INT_STATUS] = 0
        if reg < _DATA_END and end > _DATA_0 and (r[_PWR_CTRL] & _MODE_MASK) != _MODE_NORMAL:
            r[_STATUS] &= ~(_DRDY_PRESS | _DRDY_TEMP) & 0xFF

    def write(self, reg, data):
        self.write_pairs(reg, data)

    def _write_one(self, reg, value):
        r = self.regs
        if reg == _CMD:
            if value == _SOFT_RESET:
                self._reset()
            elif value not in (_FIFO_FLUSH, _EXTMODE_EN_MIDDLE):
                r[_ERR_REG] |= _ERR_CMD
            return
        mask = _WRITE_MASKS.get(reg)
        if mask is None:
            return
        value &= mask
        if reg != _PWR_CTRL:
            r[reg] = value
            return
        mode = value & _MODE_MASK
        if mode == _MODE_NORMAL and not meas_time_ok(r[_OSR], r[_ODR]):
            r[_ERR_REG] |= _ERR_CONF  # the chip refuses and stays asleep
            r[_PWR_CTRL] = value & ~_MODE_MASK
            return
        r[_PWR_CTRL] = value
        if mode:
            # The first conversion completes at once (the model keeps no ODR time).
            self.measure()
        if mode and mode != _MODE_NORMAL:  # forced: back to sleep afterwards
            r[_PWR_CTRL] = value & ~_MODE_MASK

    # -- helpers for tests and the host --

    def compensate(self, raw_p, raw_t):
        """(pressure_pa, temperature_k) as the host would compute them."""
        tl = t_lin(raw_t, self.cal)
        return pressure_pa(raw_p, tl, self.cal), tl + ZERO_C_IN_K
