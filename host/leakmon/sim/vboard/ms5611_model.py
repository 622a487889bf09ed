# Command-level model of a TE (MEAS) MS5611-01BA for the virtual board.
#
# Runs inside the MicroPython VM (and imports under CPython for tests), so it
# uses only math, time and regfile. The MS5611 has no registers: the bus
# "register" of a write or a read is a command byte.
#
#   0x1E           reset: busy (NACKs) for `reset_busy_transactions`, conversion dropped
#   0x40|osr       convert D1 (pressure), osr in 0, 2, 4, 6, 8 (256 .. 4096)
#   0x50|osr       convert D2 (temperature)
#   0x00 + read    ADC result, 3 bytes big-endian: 0 if no conversion has finished
#                  since the last read (the silicon does the same), the result once
#   0xA0..0xAE     PROM word 0..7, 2 bytes big-endian; word 7 ends in a valid CRC-4
#
# A conversion samples the chamber when its command arrives (so a reading lags
# like the silicon's) and is finished once its datasheet conversion time (max
# column: 0.60 .. 9.04 ms) has passed. At speed 0 the virtual clock moves only
# when the node sleeps between samples, while a driver's time.sleep_ms() passes
# real time only; a conversion therefore counts as finished once its time has
# passed on EITHER clock, so a driver's blocking wait at start-up and the node's
# sampling schedule both see it complete, and a read that comes too soon on both
# clocks gets 0. (cfg "real_time_conversions": false uses the virtual clock only.)
#
# The compensation maths below performs the same float operations in the same
# order as leakmon.sensors.ms5611. Not modelled: OSR's effect on noise, SPI.
import math

try:
    from . import regfile  # CPython, as leakmon.sim.vboard.ms5611_model
except ImportError:
    import regfile  # MicroPython (the board's path), or CPython with vboard/ on sys.path

try:
    from time import ticks_diff as _ticks_diff  # type: ignore[attr-defined]
    from time import ticks_us as _ticks_us  # type: ignore[attr-defined]
except ImportError:  # CPython
    from time import monotonic_ns as _monotonic_ns

    def _ticks_us():
        return _monotonic_ns() // 1000

    def _ticks_diff(a, b):
        return a - b

EIO = 5

_CMD_ADC_READ = 0x00
_CMD_RESET = 0x1E
_CMD_CONV_D1 = 0x40
_CMD_CONV_D2 = 0x50
_CMD_PROM_0 = 0xA0
_CMD_PROM_END = 0xAE

# Maximum conversion time per OSR code (datasheet), microseconds.
CONV_US = {0: 600, 2: 1170, 4: 2280, 6: 4540, 8: 9040}

# The datasheet's typical coefficients C1..C6 (its worked example).
DEFAULT_COEFFICIENTS = (40127, 36924, 23317, 23282, 33464, 28312)
DEFAULT_WORD0 = 0x0000  # "reserved for manufacturer"
DEFAULT_SERIAL = 0x4A  # high byte of word 7; its low nibble holds the CRC

ZERO_C_IN_K = 273.15
RAW_MAX = 0xFFFFFF
_A_T2 = 1.0 / 2147483648.0  # the T2 = dT^2 / 2^31 coefficient


def crc4(words):
    """CRC-4 of 8 PROM words, written from TE AN520's description, not its code.

    The firmware driver has the one CRC-4 that ships (AN520's byte-wise shift
    register); this is a second, independent one, so the virtual board catches a
    bug in the driver's instead of sharing it. The PROM is read as one 128-bit
    polynomial, word 0 first, MSB first; word 7's low byte (the CRC nibble and four
    unused bits) does not count. AN520's register (16 bits, feedback 0x3000 from its
    top bit) leaves the remainder of the other 120 bits times x^4 divided by
    x^4 + x + 1 (0b10011): long division, one bit at a time, here.
    """
    m = 0
    for w in words[:7]:
        m = (m << 16) | (w & 0xFFFF)
    m = (((m << 8) | ((words[7] >> 8) & 0xFF)) << 4)  # 120 message bits, then 4 zero bits
    for bit in range(123, 3, -1):
        if (m >> bit) & 1:
            m ^= 0b10011 << (bit - 4)
    return m


def make_prom(word0, coefficients, serial):
    """8 PROM words with word 7 = (serial << 8) | CRC-4."""
    words = [word0 & 0xFFFF] + [c & 0xFFFF for c in coefficients] + [(serial & 0xFF) << 8]
    words[7] |= crc4(words)
    return words


# ---- Compensation maths (scalar twin of leakmon.sensors.ms5611) ----

def temp_off_sens(d2, cal):
    """(TEMP in 1/100 C, OFF, SENS) with second-order compensation, as floats."""
    dt = float(d2) - cal[4] * 256.0
    temp = 2000.0 + dt * float(cal[5]) / 8388608.0
    off = cal[1] * 65536.0 + dt * float(cal[3]) / 128.0
    sens = cal[0] * 32768.0 + dt * float(cal[2]) / 256.0
    if temp < 2000.0:
        d = temp - 2000.0
        d_sq = d * d
        t2 = dt * dt / 2147483648.0
        off2 = 5.0 * d_sq / 2.0
        sens2 = 5.0 * d_sq / 4.0
        if temp < -1500.0:
            e = temp + 1500.0
            e_sq = e * e
            off2 = off2 + 7.0 * e_sq
            sens2 = sens2 + 11.0 * e_sq / 2.0
        temp = temp - t2
        off = off - off2
        sens = sens - sens2
    return temp, off, sens


def pressure_pa(d1, off, sens):
    return (float(d1) * sens / 2097152.0 - off) / 32768.0


def compensate(d1, d2, cal):
    """(pressure_pa, temperature_k) as the host computes them."""
    temp, off, sens = temp_off_sens(d2, cal)
    return pressure_pa(d1, off, sens), temp / 100.0 + ZERO_C_IN_K


def temperature_counts(temperature_k, cal):
    """D2 (unrounded) whose second-order TEMP equals temperature_k.

    Above 20 C TEMP is linear in dT; below, TEMP = 2000 + k dT - dT^2 / 2^31 with
    dT < 0, whose small root is taken in the cancellation-free form.
    """
    k = cal[5] / 8388608.0
    c = (temperature_k - ZERO_C_IN_K) * 100.0 - 2000.0
    if c >= 0.0:
        dt = c / k
    else:
        dt = 2.0 * c / (k + math.sqrt(k * k - 4.0 * _A_T2 * c))
    return cal[4] * 256.0 + dt


def pressure_counts(pressure, d2, cal):
    """D1 (unrounded) that compensates to pressure (Pa) at temperature count d2."""
    _, off, sens = temp_off_sens(d2, cal)
    return (pressure * 32768.0 + off) * 2097152.0 / sens


def _to_counts(x):
    """Round to an integer count and clip to 24 bits (NaN reads as 0)."""
    return regfile.round_clip(x, 0, RAW_MAX)


def raw_counts(pressure, temperature_k, cal):
    """(D1, D2) integer counts for these conditions; D1 is inverted at the
    rounded D2, which is what the host will compensate it with."""
    d2 = _to_counts(temperature_counts(temperature_k, cal))
    d1 = _to_counts(pressure_counts(pressure, d2, cal))
    return d1, d2


# ---- The chip ----

class MS5611Model(regfile.SensorModel):
    """MS5611 on the virtual I2C bus: commands, an ADC result latch and the PROM."""

    def __init__(self, chip, hw, cfg):
        regfile.SensorModel.__init__(self, chip, hw, cfg, ("MS5611",), noise_pa=1.2, noise_k=0.002)
        coefficients = tuple(cfg.get("coefficients", DEFAULT_COEFFICIENTS))
        if len(coefficients) != 6:
            raise ValueError("MS5611Model: coefficients must be C1..C6 (6 values)")
        self.cal = coefficients
        self.prom = make_prom(cfg.get("prom_word0", DEFAULT_WORD0), coefficients,
                              cfg.get("serial", DEFAULT_SERIAL))
        if cfg.get("bad_crc", False):
            self.prom[7] ^= 0x5  # a corrupted PROM (or another chip answering)
        flip = cfg.get("prom_flip_bit")  # one bit of the PROM flipped after its CRC was made:
        if flip is not None:  # bit 0 is word 0's MSB, bit 127 word 7's LSB
            self.prom[flip >> 4] ^= 0x8000 >> (flip & 15)
        self.reset_busy = int(cfg.get("reset_busy_transactions", 1))
        self.real_time = bool(cfg.get("real_time_conversions", True))
        self.resets = 0
        self.commands = 0
        self._busy = 0
        self._conv = None  # [value, virtual start us, real start ticks, duration us]

    # -- conversions --

    def _virtual_us(self):
        clock = getattr(self.hw, "clock", None)
        return clock.now_us() if clock is not None else 0

    def _measure(self):
        p_meas, t_meas = self.sensed()
        return raw_counts(p_meas, t_meas, self.cal)

    def _start(self, cmd):
        osr = cmd & 0x0F
        dur = CONV_US.get(osr)
        if dur is None:
            return  # not a conversion command the chip knows: ignored
        d1, d2 = self._measure()
        value = d1 if cmd & 0xF0 == _CMD_CONV_D1 else d2
        self._conv = [value, self._virtual_us(), _ticks_us(), dur]

    def _finished(self):
        c = self._conv
        if c is None:
            return False
        if self._virtual_us() - c[1] >= c[3]:
            return True
        return self.real_time and _ticks_diff(_ticks_us(), c[2]) >= c[3]

    def _command(self, cmd):
        self.commands += 1
        if cmd == _CMD_RESET:
            self.resets += 1
            self._conv = None
            self._busy = self.reset_busy
        elif cmd & 0xE0 == 0x40:  # 0x40..0x5F: convert D1 / D2
            self._start(cmd)

    def _check_busy(self):
        if self._busy:
            self._busy -= 1
            raise OSError(EIO)  # NACK while the PROM reloads

    # -- bus interface --

    def read_into(self, cmd, buf):
        self._check_busy()
        n = len(buf)
        if cmd == _CMD_ADC_READ:
            value = 0
            if self._finished():
                value = self._conv[0]
                self._conv = None
            data = ((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)
        elif _CMD_PROM_0 <= cmd <= _CMD_PROM_END and not cmd & 1:
            w = self.prom[(cmd - _CMD_PROM_0) >> 1]
            data = (w >> 8, w & 0xFF)
        else:
            self._command(cmd)
            data = ()
        for i in range(n):
            buf[i] = data[i] if i < len(data) else 0

    def write(self, cmd, data):
        self._check_busy()
        self._command(cmd)

    # -- helpers for tests and the host --

    def compensate(self, d1, d2):
        return compensate(d1, d2, self.cal)
