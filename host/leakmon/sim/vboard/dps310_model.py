# Register-level model of an Infineon DPS310 for the virtual board.
#
# Runs inside the MicroPython VM (and imports under CPython for tests), so it
# imports only regfile. Reading the data registers 0x00..0x05 in background mode
# takes a fresh measurement of the chamber: the true pressure and temperature
# plus noise and offset, turned into signed 24-bit counts by inverting the
# datasheet's compensation with the scale factors of the oversampling rates
# set in PRS_CFG / TMP_CFG. The forward maths below performs the same float
# operations in the same order as leakmon.sensors.dps310, so the host
# recovers the model's input to within half a count of quantization.
#
# Modelled traps, so the firmware tests can see a driver fall into them (the
# error sizes are stylized, not measured):
# * the temperature fuse: until the fix sequence (0xA5 -> 0x0E, 0x96 -> 0x0F,
#   0x02 -> 0x62) has been written since the last reset, temperatures read
#   BAD_FUSE_ERROR_K too high (cfg "bad_fuse": false models a good part);
# * TMP_EXT (TMP_CFG bit 7) differing from COEF_SRCE bit 7: temperatures read
#   WRONG_SENSOR_ERROR_K off. In both cases the raw pressure still follows the
#   true temperature, so the host's pressure goes wrong too, as on the chip;
# * oversampling above x8 without the P/T shift bit in CFG_REG: the result
#   overflows (the count is 64 times too large, wrapped to 24 bits); the shift
#   bit at x8 or below loses 6 bits.
#
# Not modelled: measurement timing (every read is a new conversion), the FIFO,
# interrupts, command-mode busy time, the rate x time budget.
try:
    from . import regfile  # CPython, as leakmon.sim.vboard.dps310_model
except ImportError:
    import regfile  # MicroPython (the board's path), or CPython with vboard/ on sys.path

# Registers
_PSR_B2 = 0x00
_TMP_B2 = 0x03
_DATA_END = 0x06
_PRS_CFG = 0x06
_TMP_CFG = 0x07
_MEAS_CFG = 0x08
_CFG_REG = 0x09
_INT_STS = 0x0A
_FIFO_STS = 0x0B
_RESET = 0x0C
_PRODUCT_ID = 0x0D
_FUSE_KEY_0 = 0x0E
_FUSE_KEY_1 = 0x0F
_COEF_0 = 0x10
_COEF_SRCE = 0x28
_FUSE_FIX = 0x62

# Bits and values
_COEF_RDY = 0x80
_SENSOR_RDY = 0x40
_TMP_RDY = 0x20
_PRS_RDY = 0x10
_MEAS_CTRL = 0x07
_TMP_EXT = 0x80
_T_SHIFT = 0x08
_P_SHIFT = 0x04
_SOFT_RST = 0x09

CHIP_IDS = {"DPS310": 0x10}

COEF_LEN = 18
SCALE_FACTORS = (524288, 1572864, 3670016, 7864320, 253952, 516096, 1040384, 2088960)

# A real DPS310's coefficients, as posted in Infineon/DPS310-Pressure-Sensor
# issue #23: c0 = 223, c1 = -291, c00 = 80074, c10 = -56035, c01 = -3145,
# c11 = 1432, c20 = -9919, c21 = 152, c30 = -1321 (registers 0x10..0x21).
DEFAULT_COEF_HEX = "0dfedd138caf251df3b70598d9410098fad7"
DEFAULT_COEF_SRCE = 0x80  # coefficients for the external (MEMS) temperature sensor

BAD_FUSE_ERROR_K = 35.0
WRONG_SENSOR_ERROR_K = -8.0

ZERO_C_IN_K = 273.15
RAW_MIN = -0x800000
RAW_MAX = 0x7FFFFF
_NEWTON_STEPS = 30


# ---- Compensation maths (scalar twin of leakmon.sensors.dps310) ----

def _signed(value, bits):
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def parse_coef(coef):
    """Tuple (c0, c1, c00, c10, c01, c11, c20, c21, c30) of floats from 0x10..0x21."""
    if len(coef) != COEF_LEN:
        raise ValueError("DPS310 coefficients must be 18 bytes, got %d" % len(coef))
    b = bytes(coef)
    out = [_signed((b[0] << 4) | (b[1] >> 4), 12),
           _signed(((b[1] & 0x0F) << 8) | b[2], 12),
           _signed((b[3] << 12) | (b[4] << 4) | (b[5] >> 4), 20),
           _signed(((b[5] & 0x0F) << 16) | (b[6] << 8) | b[7], 20)]
    for i in range(8, 18, 2):
        out.append(_signed((b[i] << 8) | b[i + 1], 16))
    return tuple(float(v) for v in out)


def temperature_c(t_sc, cal):
    """Compensated temperature in deg C from the scaled raw temperature."""
    return cal[0] * 0.5 + cal[1] * t_sc


def pressure_pa(p_sc, t_sc, cal):
    """Compensated pressure in Pa from scaled raw pressure and temperature."""
    return (cal[2] + p_sc * (cal[3] + p_sc * (cal[6] + p_sc * cal[8]))
            + t_sc * cal[4] + t_sc * p_sc * (cal[5] + p_sc * cal[7]))


def compensate(raw_p, raw_t, cal, kp, kt):
    """(pressure_pa, temperature_k) from signed raw counts, as the host computes them."""
    t_sc = float(raw_t) / float(kt)
    p_sc = float(raw_p) / float(kp)
    return pressure_pa(p_sc, t_sc, cal), temperature_c(t_sc, cal) + ZERO_C_IN_K


def temperature_scaled(temp_c, cal):
    """Scaled raw temperature whose compensated value is temp_c."""
    return (temp_c - cal[0] * 0.5) / cal[1]


def pressure_scaled(target_pa, t_sc, cal):
    """Scaled raw pressure that compensates to target_pa at t_sc (Newton on the cubic)."""
    a0 = cal[2] + t_sc * cal[4] - target_pa
    a1 = cal[3] + t_sc * cal[5]
    a2 = cal[6] + t_sc * cal[7]
    a3 = cal[8]
    x = -a0 / a1
    for _ in range(_NEWTON_STEPS):
        f = a0 + x * (a1 + x * (a2 + x * a3))
        df = a1 + x * (2.0 * a2 + 3.0 * a3 * x)
        if df == 0.0:
            break
        step = f / df
        x -= step
        if abs(step) < 1e-15:
            break
    return x


def _to_counts(x):
    """Round to an integer count and clip to signed 24 bits (NaN reads as 0)."""
    return regfile.round_clip(x, RAW_MIN, RAW_MAX)


def raw_counts(pressure, temperature_k, cal, kp, kt):
    """(raw_p, raw_t) integer counts a chip would report for these conditions.

    The pressure is inverted at the scaled value of the *rounded* temperature
    count, which is what the host will compute it with.
    """
    raw_t = _to_counts(temperature_scaled(temperature_k - ZERO_C_IN_K, cal) * kt)
    raw_p = _to_counts(pressure_scaled(pressure, float(raw_t) / float(kt), cal) * kp)
    return raw_p, raw_t


def _wrap24(x):
    x &= 0xFFFFFF
    return x - 0x1000000 if x & 0x800000 else x


def _shifted(raw, prc, shift_on):
    """What the result register holds for the properly shifted count raw."""
    if prc > 3 and not shift_on:
        return _wrap24(raw << 6)  # overflow
    if prc <= 3 and shift_on:
        return raw >> 6
    return raw


# ---- The chip ----

class DPS310Model(regfile.RegisterModel):
    """DPS310 on the virtual I2C bus: a 256-byte register file."""

    def __init__(self, chip, hw, cfg):
        # reset_busy_reads: MEAS_CFG reads that show the sensor and coefficients
        # not ready after a reset.
        regfile.RegisterModel.__init__(self, chip, hw, cfg, ("DPS310",),
                                       noise_pa=0.3, noise_k=0.002, reset_busy_reads=2)
        self.chip_id = cfg.get("chip_id", CHIP_IDS[chip])
        self.bad_fuse = bool(cfg.get("bad_fuse", True))
        self.coef = bytes.fromhex(cfg.get("calib", DEFAULT_COEF_HEX))
        self.cal = parse_coef(self.coef)
        self.coef_srce = int(cfg.get("coef_srce", DEFAULT_COEF_SRCE)) & 0x80
        r = self.regs
        r[_PRODUCT_ID] = self.chip_id
        r[_COEF_0:_COEF_0 + COEF_LEN] = self.coef
        r[_COEF_SRCE] = self.coef_srce
        self._reset()
        self._busy = 0  # power-on: ready at once
        r[_MEAS_CFG] = _COEF_RDY | _SENSOR_RDY

    def _reset(self):
        r = self.regs
        for a in range(_PSR_B2, _RESET):
            r[a] = 0
        r[_FUSE_KEY_0] = 0
        r[_FUSE_KEY_1] = 0
        r[_FUSE_FIX] = 0
        self.fuse_fixed = False
        self._busy = self.reset_busy_reads

    # -- measurement --

    def scale_factors(self):
        """(kP, kT) of the oversampling rates now configured."""
        r = self.regs
        return SCALE_FACTORS[r[_PRS_CFG] & 0x07], SCALE_FACTORS[r[_TMP_CFG] & 0x07]

    def measure(self, pressure=True, temperature=True):
        """Take one conversion of the chamber into the data registers."""
        p_meas, t_meas = self.sensed()
        r = self.regs
        kp, kt = self.scale_factors()
        raw_p, raw_t = raw_counts(p_meas, t_meas, self.cal, kp, kt)
        t_err = 0.0
        if self.bad_fuse and not self.fuse_fixed:
            t_err += BAD_FUSE_ERROR_K
        if (r[_TMP_CFG] & _TMP_EXT) != self.coef_srce:
            t_err += WRONG_SENSOR_ERROR_K
        if t_err:
            raw_t = _to_counts(temperature_scaled(t_meas + t_err - ZERO_C_IN_K, self.cal) * kt)
        cfg = r[_CFG_REG]
        if pressure:
            self._put24(_PSR_B2, _shifted(raw_p, r[_PRS_CFG] & 0x0F, cfg & _P_SHIFT))
            r[_MEAS_CFG] |= _PRS_RDY
        if temperature:
            self._put24(_TMP_B2, _shifted(raw_t, r[_TMP_CFG] & 0x0F, cfg & _T_SHIFT))
            r[_MEAS_CFG] |= _TMP_RDY

    def _put24(self, reg, value):
        r = self.regs
        value &= 0xFFFFFF
        r[reg] = value >> 16
        r[reg + 1] = (value >> 8) & 0xFF
        r[reg + 2] = value & 0xFF

    # -- bus interface --

    def read_into(self, reg, buf):
        r = self.regs
        n = len(buf)
        end = reg + n
        data_read = reg < _DATA_END and end > _PSR_B2
        if data_read and (r[_MEAS_CFG] & _MEAS_CTRL) >= 5:
            mode = r[_MEAS_CFG] & _MEAS_CTRL
            self.measure(pressure=mode != 6, temperature=mode != 5)
        if reg <= _MEAS_CFG < end:
            if self.busy_read():
                r[_MEAS_CFG] &= ~(_COEF_RDY | _SENSOR_RDY) & 0xFF
            else:
                r[_MEAS_CFG] |= _COEF_RDY | _SENSOR_RDY
        self.copy_out(reg, buf)
        # Ready flags clear when their result is read.
        if reg < _TMP_B2 and end > _PSR_B2:
            r[_MEAS_CFG] &= ~_PRS_RDY & 0xFF
        if reg < _DATA_END and end > _TMP_B2:
            r[_MEAS_CFG] &= ~_TMP_RDY & 0xFF

    # write(reg, data): RegisterModel's, auto-incrementing.

    def _write_one(self, reg, value):
        r = self.regs
        if reg == _RESET:
            if value & 0x0F == _SOFT_RST:
                self._reset()
            return
        if reg == _PRS_CFG:
            r[reg] = value & 0x7F
        elif reg == _TMP_CFG or reg == _CFG_REG:
            r[reg] = value
        elif reg == _FUSE_KEY_0 or reg == _FUSE_KEY_1:
            r[reg] = value
        elif reg == _FUSE_FIX:
            r[reg] = value
            if value == 0x02 and r[_FUSE_KEY_0] == 0xA5 and r[_FUSE_KEY_1] == 0x96:
                self.fuse_fixed = True
        elif reg == _MEAS_CFG:
            self._set_mode(value & _MEAS_CTRL)

    def _set_mode(self, mode):
        r = self.regs
        r[_MEAS_CFG] = (r[_MEAS_CFG] & 0xF0) | mode
        if mode == 1 or mode == 2:  # command mode: one conversion, then idle
            self.measure(pressure=mode == 1, temperature=mode == 2)
            r[_MEAS_CFG] &= 0xF0
        elif mode >= 5:  # background: the first conversion is ready at once
            self.measure(pressure=mode != 6, temperature=mode != 5)
        elif mode:  # 3 and 4 are not valid modes: the chip stays idle
            r[_MEAS_CFG] &= 0xF0
