# Register-level model of a Bosch BMP280 / BME280 for the virtual board.
#
# Runs inside the MicroPython VM (and imports under CPython for tests), so it
# uses only math and struct. Reading the data registers 0xF7..0xFC in normal
# mode takes a fresh measurement of the chamber: the true pressure and
# temperature plus noise and offset, turned into 20-bit counts by inverting the
# datasheet's double-precision compensation. The forward maths below performs
# the same float operations in the same order as leakmon.sensors.bmp280
# (t_fine kept unrounded), so the host recovers the model's input to within
# half a count of quantization.
#
# Not modelled: standby timing (every read is a new conversion), the IIR
# filter, oversampling's effect on noise, SPI, BME280 humidity (its data
# registers keep their reset value 0x8000 whatever ctrl_hum says).
import math
import struct

try:
    from . import regfile  # CPython, as leakmon.sim.vboard.bmp280_model
except ImportError:
    import regfile  # MicroPython (the board's path), or CPython with vboard/ on sys.path

# Registers
_CALIB_0 = 0x88
_CALIB_H1 = 0xA1  # BME280
_CHIP_ID = 0xD0
_RESET = 0xE0
_CALIB_H2 = 0xE1  # BME280, 0xE1..0xE7
_CTRL_HUM = 0xF2
_STATUS = 0xF3
_CTRL_MEAS = 0xF4
_CONFIG = 0xF5
_DATA_0 = 0xF7
_DATA_END = 0xFD  # one past temp_xlsb (0xFC)

_SOFT_RESET = 0xB6
_IM_UPDATE = 0x01
_MODE_MASK = 0x03
_MODE_NORMAL = 0x03

CHIP_IDS = {"BMP280": 0x58, "BME280": 0x60}

CALIB_FMT = "<HhhHhhhhhhhh"
CALIB_LEN = 24

# The calibration of the BMP280 datasheet's worked example (section 3.12):
# dig_T1 = 27504, dig_T2 = 26435, dig_T3 = -1000, dig_P1 = 36477, dig_P2 = -10685,
# dig_P3 = 3024, dig_P4 = 2855, dig_P5 = 140, dig_P6 = -7, dig_P7 = 15500,
# dig_P8 = -14600, dig_P9 = 6000.
DEFAULT_CALIB_HEX = "706b436718fc7d8e43d6d00b270b8c00f9ff8c3cf8c67017"
# BME280 humidity trimming (0xA1, then 0xE1..0xE7): typical values (H1 = 75,
# H2 = 362, H3 = 0, H4 = 315, H5 = 50, H6 = 30); only there to be read.
DEFAULT_HUM_CALIB_HEX = "4b" + "6a0100" + "132b03" + "1e"

ZERO_C_IN_K = 273.15
RAW_MAX = 0xFFFFF  # 20 bits
_NEWTON_STEPS = 30


# ---- Compensation maths (scalar twin of leakmon.sensors.bmp280) ----

def parse_calib(block):
    """Tuple (dig_T1 .. dig_P9) of floats from the 24-byte block 0x88..0x9F."""
    if len(block) != CALIB_LEN:
        raise ValueError("BMP280 calibration block must be 24 bytes, got %d" % len(block))
    return tuple(float(v) for v in struct.unpack(CALIB_FMT, bytes(block)))


def t_fine(adc_t, cal):
    """Bosch's t_fine (unrounded, 5120 per deg C) from a raw temperature count."""
    ut = float(adc_t)
    var1 = (ut / 16384.0 - cal[0] / 1024.0) * cal[1]
    d = ut / 131072.0 - cal[0] / 8192.0
    var2 = (d * d) * cal[2]
    return var1 + var2


def _pressure_terms(tf, cal):
    """(v1, v2): the temperature-dependent divisor and offset of the pressure formula."""
    v1 = tf / 2.0 - 64000.0
    v2 = v1 * v1 * cal[8] / 32768.0
    v2 = v2 + v1 * cal[7] * 2.0
    v2 = v2 / 4.0 + cal[6] * 65536.0
    v1 = (cal[5] * v1 * v1 / 524288.0 + cal[4] * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * cal[3]
    return v1, v2


def pressure_pa(adc_p, tf, cal):
    """Compensated pressure in Pa from a raw count and t_fine."""
    v1, v2 = _pressure_terms(tf, cal)
    if v1 == 0.0:
        return float("nan")
    p = 1048576.0 - float(adc_p)
    p = (p - v2 / 4096.0) * 6250.0 / v1
    q1 = cal[11] * p * p / 2147483648.0
    q2 = p * cal[10] / 32768.0
    return p + (q1 + q2 + cal[9]) / 16.0


def temperature_counts(temperature_c, cal):
    """Raw temperature (unrounded) whose t_fine is 5120 * temperature_c.

    t_fine = a*d + b*d**2 with d = u - 16*T1, a = T2/16384, b = T3/2**34: the
    root near the linear solution, in the cancellation-free form.
    """
    a = cal[1] / 16384.0
    b = cal[2] / 17179869184.0
    target = 5120.0 * temperature_c
    disc = a * a + 4.0 * b * target
    if disc < 0.0:  # beyond the parabola's vertex: no count gives this temperature
        disc = 0.0
    return 16.0 * cal[0] + 2.0 * target / (a + math.sqrt(disc))


def pressure_counts(target_pa, tf, cal):
    """Raw pressure (unrounded) that compensates to target_pa at t_fine tf.

    The output is p + (P9 p^2 / 2^31 + P8 p / 2^15 + P7) / 16 of an
    intermediate p that is linear in the count: solve that quadratic (Newton
    from the linear guess), then undo the linear step.
    """
    v1, v2 = _pressure_terms(tf, cal)
    c2 = cal[11] / 2147483648.0 / 16.0
    c1 = 1.0 + cal[10] / 32768.0 / 16.0
    c0 = cal[9] / 16.0 - target_pa
    p = -c0 / c1
    for _ in range(_NEWTON_STEPS):
        f = c2 * p * p + c1 * p + c0
        df = 2.0 * c2 * p + c1
        if df == 0.0:
            break
        step = f / df
        p -= step
        if abs(step) < 1e-9:
            break
    return 1048576.0 - (p * v1 / 6250.0 + v2 / 4096.0)


def _to_counts(x):
    """Round to an integer count and clip to 20 bits (NaN reads as 0)."""
    return regfile.round_clip(x, 0, RAW_MAX)


def raw_counts(pressure, temperature_k, cal):
    """(adc_P, adc_T) integer counts a chip would report for these conditions.

    The pressure is inverted at the t_fine of the *rounded* temperature count,
    which is what the host will compute it with.
    """
    adc_t = _to_counts(temperature_counts(temperature_k - ZERO_C_IN_K, cal))
    adc_p = _to_counts(pressure_counts(pressure, t_fine(adc_t, cal), cal))
    return adc_p, adc_t


# ---- The chip ----

class BMP280Model(regfile.RegisterModel):
    """BMP280/BME280 on the virtual I2C bus: a 256-byte register file."""

    def __init__(self, chip, hw, cfg):
        # reset_busy_reads: status reads that show im_update (NVM copy) after a soft reset.
        regfile.RegisterModel.__init__(self, chip, hw, cfg, ("BMP280", "BME280"),
                                       noise_pa=1.3, noise_k=0.005, reset_busy_reads=1)
        self.is_bme = chip == "BME280"
        self.chip_id = cfg.get("chip_id", CHIP_IDS[chip])
        self.calib = bytes.fromhex(cfg.get("calib", DEFAULT_CALIB_HEX))
        self.cal = parse_calib(self.calib)
        r = self.regs
        r[_CHIP_ID] = self.chip_id
        r[_CALIB_0:_CALIB_0 + CALIB_LEN] = self.calib
        if self.is_bme:
            hum = bytes.fromhex(DEFAULT_HUM_CALIB_HEX)
            r[_CALIB_H1] = hum[0]
            r[_CALIB_H2:_CALIB_H2 + 7] = hum[1:]
        self._reset()
        self._busy = 0  # power-on: ready at once

    def _reset(self):
        r = self.regs
        for a in range(_CTRL_HUM, 0x100):
            r[a] = 0
        # Data registers read 0x80000 (0x8000 for humidity) until a conversion.
        r[0xF7] = 0x80
        r[0xFA] = 0x80
        r[0xFD] = 0x80
        self.ctrl_hum_active = 0
        self._busy = self.reset_busy_reads

    # -- measurement --

    def measure(self):
        """Take one conversion of the chamber into the data registers."""
        p_meas, t_meas = self.sensed()
        adc_p, adc_t = raw_counts(p_meas, t_meas, self.cal)
        r = self.regs
        ctrl = r[_CTRL_MEAS]
        if (ctrl >> 2) & 0x07:  # osrs_p = 0 skips pressure
            self._put20(0xF7, adc_p)
        if (ctrl >> 5) & 0x07:
            self._put20(0xFA, adc_t)

    def _put20(self, reg, value):
        r = self.regs
        r[reg] = (value >> 12) & 0xFF
        r[reg + 1] = (value >> 4) & 0xFF
        r[reg + 2] = (value & 0x0F) << 4

    # -- bus interface --

    def read_into(self, reg, buf):
        r = self.regs
        n = len(buf)
        end = reg + n
        if reg < _DATA_END and end > _DATA_0 and (r[_CTRL_MEAS] & _MODE_MASK) == _MODE_NORMAL:
            self.measure()
        if reg <= _STATUS < end:
            r[_STATUS] = _IM_UPDATE if self.busy_read() else 0
        self.copy_out(reg, buf)

    def write(self, reg, data):
        # Multi-byte writes carry (address, data) pairs: reg, d0, reg1, d1, ...
        self.write_pairs(reg, data)

    def _write_one(self, reg, value):
        r = self.regs
        if reg == _RESET:
            if value == _SOFT_RESET:
                self._reset()
            return
        if reg == _CTRL_HUM:
            if self.is_bme:
                r[_CTRL_HUM] = value & 0x07  # takes effect at the next CTRL_MEAS write
            return
        if reg == _CONFIG:
            r[_CONFIG] = value & 0xFD
            return
        if reg != _CTRL_MEAS:
            return  # read-only or reserved
        r[_CTRL_MEAS] = value
        self.ctrl_hum_active = r[_CTRL_HUM]
        mode = value & _MODE_MASK
        if mode:
            # The first conversion completes at once (the model keeps no time).
            self.measure()
        if mode and mode != _MODE_NORMAL:  # forced: back to sleep afterwards
            r[_CTRL_MEAS] = value & ~_MODE_MASK & 0xFF

    # -- helpers for tests and the host --

    def compensate(self, adc_p, adc_t):
        """(pressure_pa, temperature_k) as the host would compute them."""
        tf = t_fine(adc_t, self.cal)
        return pressure_pa(adc_p, tf, self.cal), tf / 5120.0 + ZERO_C_IN_K
