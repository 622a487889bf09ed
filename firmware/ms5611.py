"""TE (MEAS) MS5611-01BA barometer driver: raw counts only, no float maths.

The MS5611 has no registers, only commands: reset 0x1E, convert D1 (pressure)
0x40|osr or D2 (temperature) 0x50|osr, ADC read 0x00 (3 bytes, big-endian; 0 if
no conversion finished), PROM read 0xA0..0xAE (8 words, big-endian). A command
is a one-byte write: writeto_mem(addr, cmd, b"").

Identity: there is no id register. The 8 PROM words are read and checked against
their CRC-4 (TE AN520) before anything is written; C1..C6 must also be neither
0x0000 nor 0xFFFF (an all-zero block, as a register chip answering 0xA0.. gives,
has a valid CRC). Only if that check fails is one reset sent and the PROM read
again: after power-on the datasheet wants a reset to load the PROM into its read
register. A reset is a one-byte write that, on any register-based chip at the
same address, only moves its register pointer; app.DRIVERS tries this driver
last. Once identified, the chip is reset (a conversion left running by an earlier
program is dropped) and its PROM read again as the calibration.

``calib``: 12 bytes, PROM words 1..6 (C1..C6), big-endian u16 each, in order.
Raw sample (RAW_SIZE 6): D1 u24 then D2 u24, big-endian as read.

Schedule: a conversion at OSR 4096 takes up to 9.04 ms, so read_raw_into never
waits for one. Each call reads the result of the conversion the previous call
started, then starts the next: D2 every ``temp_every``-th call, D1 otherwise.
Staleness this implies, for a sampling period T (>= 9.04 ms at OSR 4096):
  * the pressure in a row was converted one period earlier (started at the
    previous row's slot);
  * on the row after a D2 slot the pressure repeats the row before it (that slot
    converted temperature instead): one row in ``temp_every`` is a duplicate;
  * the temperature is refreshed every ``temp_every`` rows, so it is up to
    temp_every x T old (1 s at the defaults of 10 Hz and 10); it enters the
    pressure compensation too, which matters only if the gas temperature moves
    fast compared with that.
A result of 0 (the conversion did not finish, e.g. a period shorter than the
conversion time) keeps the previous value; after _MAX_MISSES such reads in a row
read_raw_into raises OSError(ETIMEDOUT) so the node reports it.
"""

import time

from i2cdev import I2CDevice

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Commands (datasheet, "Commands")
_CMD_ADC_READ = const(0x00)
_CMD_RESET = const(0x1E)
_CMD_CONV_D1 = const(0x40)
_CMD_CONV_D2 = const(0x50)
_CMD_PROM_0 = const(0xA0)

_PROM_WORDS = const(8)
_CALIB_LEN = const(12)

# Oversampling codes, added to a convert command.
OSR_256 = const(0)
OSR_512 = const(2)
OSR_1024 = const(4)
OSR_2048 = const(6)
OSR_4096 = const(8)

_RESET_MS = const(3)  # reset takes 2.8 ms
_RESET_TRIES = const(10)
_POLL_MS = const(1)
_PRIME_TRIES = const(3)
_MAX_MISSES = const(4)
_ETIMEDOUT = const(110)
_EMPTY = b""

# Wire chip code (CHIP_MS5611 of wire.py).
CHIP_MS5611 = const(8)


def conversion_ms(osr):
    """Maximum conversion time in whole ms (datasheet: 0.60 / 1.17 / 2.28 / 4.54 / 9.04)."""
    return (1, 2, 3, 5, 10)[osr >> 1]


def crc4(words):
    """CRC-4 of the 8 PROM words (TE AN520; the low byte of word 7 counts as 0)."""
    rem = 0
    for i in range(16):
        w = words[i >> 1]
        if i >= 14:
            w &= 0xFF00
        rem ^= (w & 0xFF) if i & 1 else (w >> 8)
        for _ in range(8):
            rem = ((rem << 1) ^ 0x3000) if rem & 0x8000 else (rem << 1)
            rem &= 0xFFFF
    return (rem >> 12) & 0xF


def prom_problem(words):
    """None if the 8 PROM words look like an MS5611's, else what is wrong."""
    for i in range(1, 7):
        if words[i] == 0 or words[i] == 0xFFFF:
            return "PROM word %d is 0x%04x" % (i, words[i])
    crc = crc4(words)
    if crc != words[7] & 0xF:
        return "PROM CRC-4 0x%x, stored 0x%x" % (crc, words[7] & 0xF)
    return None


class MS5611(I2CDevice):
    """One MS5611 on an I2C bus, sampled without waiting (see the module docstring)."""

    RAW_SIZE = 6

    def __init__(self, i2c, address=0x77, osr=OSR_4096, temp_every=10):
        if osr not in (OSR_256, OSR_512, OSR_1024, OSR_2048, OSR_4096):
            raise ValueError("osr must be 0, 2, 4, 6 or 8 (OSR 256, 512, 1024, 2048, 4096)")
        if not 2 <= temp_every <= 255:
            raise ValueError("temp_every must be 2..255 (one temperature conversion per that many samples)")
        I2CDevice.__init__(self, i2c, address)
        self.chip = CHIP_MS5611
        self._b2 = bytearray(2)
        self._adc = bytearray(3)
        self._raw = bytearray(6)  # last good D1 (0..2) and D2 (3..5)

        words = self._read_prom()
        problem = prom_problem(words)
        if problem is not None:
            self._reset()  # maybe a chip powered up without its PROM loaded
            words = self._read_prom()
            problem = prom_problem(words)
            if problem is not None:
                raise OSError("no MS5611 at 0x%02x: %s (words %s)" % (
                    address, problem, " ".join("%04x" % w for w in words)))
        else:
            self._reset()
            words = self._read_prom()
            problem = prom_problem(words)
            if problem is not None:
                raise OSError("MS5611 at 0x%02x: after reset, %s" % (address, problem))
        self.prom = words
        buf = bytearray(_CALIB_LEN)
        for i in range(6):
            buf[2 * i] = words[i + 1] >> 8
            buf[2 * i + 1] = words[i + 1] & 0xFF
        self.calib = bytes(buf)

        self._cmd_d1 = _CMD_CONV_D1 | osr
        self._cmd_d2 = _CMD_CONV_D2 | osr
        self._conv_ms = conversion_ms(osr)
        self._temp_every = temp_every
        self.misses = 0
        self._miss_run = 0
        # Prime both values with blocking conversions, then start the schedule.
        self._prime(self._cmd_d2, 3)
        self._prime(self._cmd_d1, 0)
        self._count = 0
        self._slot = 0  # where the conversion in flight lands: 0 = D1, 3 = D2
        self._command(self._cmd_d1)

    def set_oversampling(self, osr_p, osr_t):
        """One OSR code (0, 2, 4, 6, 8 = 256..4096) serves both conversions."""
        if osr_p != osr_t:
            raise ValueError("MS5611 has one OSR for pressure and temperature: give the same code twice")
        MS5611.__init__(self, self.i2c, self.address, osr=osr_p)

    def read_raw_into(self, buf):
        """Fill buf with D1 then D2 (u24 big-endian each), never waiting.

        Allocates nothing: safe under micropython.heap_lock() (except the OSError
        raised after _MAX_MISSES conversions in a row did not finish).
        """
        i2c = self.i2c
        adc = self._adc
        raw = self._raw
        i2c.readfrom_mem_into(self.address, _CMD_ADC_READ, adc)
        if adc[0] | adc[1] | adc[2]:
            s = self._slot
            raw[s] = adc[0]
            raw[s + 1] = adc[1]
            raw[s + 2] = adc[2]
            self._miss_run = 0
        else:
            self.misses = (self.misses + 1) & 0x3FFFFFFF  # stays a small int
            self._miss_run += 1
        n = self._count + 1
        if n >= self._temp_every:
            n = 0
        self._count = n
        if n == 0:
            self._slot = 3
            i2c.writeto_mem(self.address, self._cmd_d2, _EMPTY)
        else:
            self._slot = 0
            i2c.writeto_mem(self.address, self._cmd_d1, _EMPTY)
        buf[0] = raw[0]
        buf[1] = raw[1]
        buf[2] = raw[2]
        buf[3] = raw[3]
        buf[4] = raw[4]
        buf[5] = raw[5]
        if self._miss_run >= _MAX_MISSES:
            self._miss_run = 0
            raise OSError(_ETIMEDOUT)

    def _prime(self, cmd, slot):
        """One blocking conversion into the last-value buffer (start-up only)."""
        for _ in range(_PRIME_TRIES):
            self._command(cmd)
            time.sleep_ms(self._conv_ms)
            self.i2c.readfrom_mem_into(self.address, _CMD_ADC_READ, self._adc)
            if self._adc[0] | self._adc[1] | self._adc[2]:
                self._raw[slot:slot + 3] = self._adc
                return
        raise OSError("MS5611 at 0x%02x: conversion 0x%02x gave no result in %d tries"
                      % (self.address, cmd, _PRIME_TRIES))

    def _reset(self):
        self._command(_CMD_RESET)
        time.sleep_ms(_RESET_MS)
        # Any byte of PROM word 0 will do (mask 0): the chip NACKs until the PROM is reloaded.
        self._wait_bits(_CMD_PROM_0, 0, 0, _RESET_TRIES, _POLL_MS, "no answer after reset, waited")

    def _read_prom(self):
        words = []
        for i in range(_PROM_WORDS):
            self.i2c.readfrom_mem_into(self.address, _CMD_PROM_0 + 2 * i, self._b2)
            words.append((self._b2[0] << 8) | self._b2[1])
        return words

    def _command(self, cmd):
        self.i2c.writeto_mem(self.address, cmd, _EMPTY)
