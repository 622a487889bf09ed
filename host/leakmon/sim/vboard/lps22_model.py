# Register-level model of an ST LPS22HB / LPS22HH for the virtual board.
#
# Runs inside the MicroPython VM (and imports under CPython for tests), so it
# imports only regfile. In continuous mode (ODR != 0) every read that touches
# the output registers 0x28..0x2C takes a fresh measurement of the chamber: true
# pressure and temperature plus noise and offset, rounded to the chip's output
# counts (1/4096 hPa, 1/100 deg C). The forward maths below performs the same
# float operations as leakmon.sensors.lps22.
#
# Modelled: WHO_AM_I, CTRL_REG1/2/3 with their writable bits, SWRESET and BOOT
# (self-clearing after a configurable number of CTRL_REG2 reads), ONE_SHOT in
# power-down, STATUS P_DA/T_DA (cleared by reading PRESS_OUT_H / TEMP_OUT_H),
# IF_ADD_INC (without it a burst read repeats one register).
# Not modelled: ODR timing, the low-pass filter's effect on noise, BDU, FIFO,
# interrupts, reference/offset registers, LC_EN.
try:
    from . import regfile  # CPython, as leakmon.sim.vboard.lps22_model
except ImportError:
    import regfile  # MicroPython (the board's path), or CPython with vboard/ on sys.path

_WHO_AM_I = 0x0F
_CTRL_REG1 = 0x10
_CTRL_REG2 = 0x11
_CTRL_REG3 = 0x12
_STATUS = 0x27
_PRESS_OUT_XL = 0x28
_PRESS_OUT_H = 0x2A
_TEMP_OUT_L = 0x2B
_TEMP_OUT_H = 0x2C
_DATA_END = 0x2D

_ODR_MASK = 0x70
_BOOT = 0x80
_IF_ADD_INC = 0x10
_SWRESET = 0x04
_ONE_SHOT = 0x01
_P_DA = 0x01
_T_DA = 0x02

CHIP_IDS = {"LPS22HB": 0xB1, "LPS22HH": 0xB3}

# Writable bits (datasheet register maps); writes elsewhere are ignored.
_WRITE_MASKS = {
    "LPS22HB": {0x0B: 0xFF, 0x0C: 0xFF, 0x0D: 0xFF, _CTRL_REG1: 0x7F, _CTRL_REG2: 0xFD,
                _CTRL_REG3: 0xFF, 0x14: 0xFF, 0x15: 0xFF, 0x16: 0xFF, 0x17: 0xFF,
                0x18: 0xFF, 0x19: 0xFF, 0x1A: 0x01},
    "LPS22HH": {0x0B: 0xFF, 0x0C: 0xFF, 0x0D: 0x7F, 0x0E: 0xFF, _CTRL_REG1: 0x7F,
                _CTRL_REG2: 0xF7, _CTRL_REG3: 0x3F, 0x13: 0x0F, 0x14: 0x7F,
                0x15: 0xFF, 0x16: 0xFF, 0x18: 0xFF, 0x19: 0xFF},
}
_MAX_ODR = {"LPS22HB": 5, "LPS22HH": 7}

PA_PER_HPA = 100.0
COUNTS_PER_HPA = 4096.0
COUNTS_PER_DEG_C = 100.0
ZERO_C_IN_K = 273.15
P_MIN = -(1 << 23)
P_MAX = (1 << 23) - 1
T_MIN = -(1 << 15)
T_MAX = (1 << 15) - 1


# ---- Conversion maths (scalar twin of leakmon.sensors.lps22) ----

def pressure_pa(raw_p):
    return float(raw_p) * PA_PER_HPA / COUNTS_PER_HPA


def temperature_k(raw_t):
    return float(raw_t) / COUNTS_PER_DEG_C + ZERO_C_IN_K


def raw_counts(pressure, temperature):
    """(raw_p s24, raw_t s16) the chip reports for pressure (Pa) and temperature (K)."""
    raw_p = regfile.round_clip(pressure * COUNTS_PER_HPA / PA_PER_HPA, P_MIN, P_MAX)
    raw_t = regfile.round_clip((temperature - ZERO_C_IN_K) * COUNTS_PER_DEG_C, T_MIN, T_MAX)
    return raw_p, raw_t


# ---- The chip ----

class LPS22Model(regfile.RegisterModel):
    """LPS22HB/LPS22HH on the virtual I2C bus: a 256-byte register file."""

    def __init__(self, chip, hw, cfg):
        # reset_busy_reads: CTRL_REG2 reads that still show SWRESET/BOOT set after
        # one was written.
        regfile.RegisterModel.__init__(self, chip, hw, cfg, ("LPS22HB", "LPS22HH"),
                                       noise_pa=0.75 if chip == "LPS22HB" else 0.65,
                                       noise_k=0.002, reset_busy_reads=1)
        self.who_am_i = cfg.get("chip_id", CHIP_IDS[chip])
        self._masks = _WRITE_MASKS[chip]
        self.writes = 0  # bus writes received (tests check none come before the id check)
        self.regs[_WHO_AM_I] = self.who_am_i
        self._reset()
        self._busy = 0

    def _reset(self):
        r = self.regs
        for a in range(0x0B, 0x34):
            if a != _WHO_AM_I:
                r[a] = 0
        r[_CTRL_REG2] = _IF_ADD_INC
        self._busy = self.reset_busy_reads

    # -- measurement --

    def measure(self):
        """Take one conversion of the chamber into the output registers."""
        p_meas, t_meas = self.sensed()
        raw_p, raw_t = raw_counts(p_meas, t_meas)
        r = self.regs
        self.put_le(_PRESS_OUT_XL, raw_p, 3)  # signed counts, in two's complement
        self.put_le(_TEMP_OUT_L, raw_t, 2)
        r[_STATUS] |= _P_DA | _T_DA

    def _continuous(self):
        return (self.regs[_CTRL_REG1] & _ODR_MASK) != 0

    # -- bus interface --

    def read_into(self, reg, buf):
        r = self.regs
        n = len(buf)
        inc = r[_CTRL_REG2] & _IF_ADD_INC
        end = reg + n if inc else reg + 1
        if reg < _DATA_END and end > _PRESS_OUT_XL and self._continuous():
            self.measure()
        if reg <= _CTRL_REG2 < end and self._busy:
            self._busy -= 1
            if not self._busy:
                r[_CTRL_REG2] &= ~(_SWRESET | _BOOT) & 0xFF
        if inc:
            self.copy_out(reg, buf)
        else:
            for i in range(n):
                buf[i] = r[reg]
        if reg <= _PRESS_OUT_H < end:
            r[_STATUS] &= ~_P_DA & 0xFF
        if reg <= _TEMP_OUT_H < end:
            r[_STATUS] &= ~_T_DA & 0xFF

    def write(self, reg, data):
        self.writes += 1
        inc = self.regs[_CTRL_REG2] & _IF_ADD_INC
        for i in range(len(data)):
            self._write_one((reg + i) & 0xFF if inc else reg, data[i])

    def _write_one(self, reg, value):
        mask = self._masks.get(reg)
        if mask is None:
            return
        value &= mask
        r = self.regs
        if reg == _CTRL_REG2:
            if value & (_SWRESET | _BOOT):
                self._reset()  # BOOT reloads trimming; for this model both restart clean
                if self._busy:  # the bits read back set until the chip is done
                    r[_CTRL_REG2] = _IF_ADD_INC | (value & (_SWRESET | _BOOT))
                return
            r[reg] = value & ~_ONE_SHOT
            if value & _ONE_SHOT and not self._continuous():
                self.measure()  # one conversion, then ONE_SHOT clears itself
            return
        if reg == _CTRL_REG1 and ((value & _ODR_MASK) >> 4) > _MAX_ODR[self.chip]:
            value &= ~_ODR_MASK & 0xFF  # an ODR the chip lacks: stays in power-down
        r[reg] = value
        if reg == _CTRL_REG1 and value & _ODR_MASK:
            self.measure()  # the model keeps no ODR time: data is ready at once

    # -- helpers for tests and the host --

    def compensate(self, raw_p, raw_t):
        """(pressure_pa, temperature_k) as the host would compute them."""
        return pressure_pa(raw_p), temperature_k(raw_t)
