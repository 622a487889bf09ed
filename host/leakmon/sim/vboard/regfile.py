# What the virtual board's sensor models share: the chip check and measurement
# errors every model takes from sim.json, and the 256-byte register file of the
# register-level chips (the MS5611 talks in commands and uses only the first).
#
# Runs inside the MicroPython VM (and imports under CPython), so it uses only
# math. Inside the VM the models allocate outside the firmware's heap_lock but
# on the same heap (the node reports its free heap), so these helpers add little
# garbage: one tuple per conversion from sensed(). The models keep their own
# Newton loops: a shared one taking a closure would add objects on every step.
import math

T_REF_K = 298.15  # where the pressure's temperature coefficient adds nothing


def round_clip(x, lo, hi):
    """Round to an integer count within lo..hi (NaN reads as 0)."""
    if not x == x:
        return 0
    if x <= lo:
        return lo
    if x >= hi:
        return hi
    return int(math.floor(x + 0.5))


class SensorModel:
    """A sensor on the virtual bus: its chip name, the board it sits on (hw: env(),
    gauss, clock) and the errors sim.json may give it (noise, offset, tempco)."""

    def __init__(self, chip, hw, cfg, supported, noise_pa, noise_k):
        if chip not in supported:
            raise ValueError(type(self).__name__ + ": unknown chip " + str(chip)
                             + " (supported: " + ", ".join(supported) + ")")
        self.chip = chip
        self.hw = hw
        self.noise_pa = float(cfg.get("noise_pa", noise_pa))
        self.noise_k = float(cfg.get("noise_k", noise_k))
        self.offset_pa = float(cfg.get("offset_pa", 0.0))
        self.tempco_pa_per_k = float(cfg.get("tempco_pa_per_k", 0.0))

    def sensed(self):
        """(pressure_pa, temperature_k) the sensor takes the gas's state for.

        Draws the pressure's noise, then the temperature's, each only if set: the
        order keeps a seeded board's readings the same from run to run.
        """
        p, t = self.hw.env()
        p_meas = p + self.offset_pa + self.tempco_pa_per_k * (t - T_REF_K)
        t_meas = t
        if self.noise_pa:
            p_meas += self.noise_pa * self.hw.gauss.next()
        if self.noise_k:
            t_meas += self.noise_k * self.hw.gauss.next()
        return p_meas, t_meas


class RegisterModel(SensorModel):
    """A register-level chip: 256 byte registers and a busy count after a reset.

    Subclasses handle one written byte in _write_one(reg, value).
    """

    def __init__(self, chip, hw, cfg, supported, noise_pa, noise_k, reset_busy_reads):
        SensorModel.__init__(self, chip, hw, cfg, supported, noise_pa, noise_k)
        # Reads of the status register that still show the chip busy after a reset.
        self.reset_busy_reads = int(cfg.get("reset_busy_reads", reset_busy_reads))
        self.regs = bytearray(256)
        self._busy = 0

    def busy_read(self):
        """One read of the chip's ready flag: True while it is still busy from a reset."""
        if self._busy:
            self._busy -= 1
            return True
        return False

    def copy_out(self, reg, buf):
        """A burst read: consecutive registers from reg (wrapping at 0xFF) into buf."""
        r = self.regs
        for i in range(len(buf)):
            buf[i] = r[(reg + i) & 0xFF]

    def write(self, reg, data):
        # Consecutive bytes go to consecutive registers (auto-increment).
        for i in range(len(data)):
            self._write_one((reg + i) & 0xFF, data[i])

    def write_pairs(self, reg, data):
        """A Bosch burst write, addresses interleaved: reg, d0, reg1, d1, reg2, d2..."""
        if len(data) == 0:
            return
        self._write_one(reg, data[0])
        for i in range(1, len(data) - 1, 2):
            self._write_one(data[i], data[i + 1])

    def put_le(self, reg, value, n):
        """value's low n bytes into registers reg.., least significant first."""
        r = self.regs
        for i in range(n):
            r[reg + i] = (value >> (8 * i)) & 0xFF

    def _write_one(self, reg, value):
        raise NotImplementedError
