# The virtual board's hardware: built once from sim.json in the board's flash
# folder (written by the host's simboard), then reached through machine.I2C.
#
# Real silicon computes outside the MicroPython heap. The models here run inside
# the VM, so every bus transaction exempts itself from micropython.heap_lock():
# a firmware test under heap_lock then proves the firmware allocates nothing,
# while the models stay free to use floats.
import json
import math
import random

import micropython

import chamber
import vclock

EIO = 5


def _lock_depth():
    micropython.heap_lock()
    return micropython.heap_unlock()


class Gauss:
    """Seeded normal deviates (Box-Muller over random.random)."""

    def __init__(self, seed):
        random.seed(seed)
        self._spare = None

    def next(self):
        if self._spare is not None:
            v = self._spare
            self._spare = None
            return v
        u1 = random.random()
        while u1 <= 1e-300:
            u1 = random.random()
        u2 = random.random()
        r = math.sqrt(-2.0 * math.log(u1))
        self._spare = r * math.sin(2 * math.pi * u2)
        return r * math.cos(2 * math.pi * u2)


class Bus:
    """One I2C bus: device models by 7-bit address."""

    def __init__(self):
        self.devices = {}

    def attach(self, addr, model):
        self.devices[addr] = model

    def scan(self):
        return sorted(self.devices)

    def _device(self, addr):
        d = self.devices.get(addr)
        if d is None:
            raise OSError(EIO)
        return d

    def read_into(self, addr, reg, buf):
        d = self._device(addr)
        depth = _lock_depth()
        for _ in range(depth):
            micropython.heap_unlock()
        try:
            d.read_into(reg, buf)
        finally:
            for _ in range(depth):
                micropython.heap_lock()

    def write(self, addr, reg, data):
        d = self._device(addr)
        depth = _lock_depth()
        for _ in range(depth):
            micropython.heap_unlock()
        try:
            d.write(reg, data)
        finally:
            for _ in range(depth):
                micropython.heap_lock()


class Hardware:
    def __init__(self, cfg):
        self.cfg = cfg
        self.clock = vclock.VClock(cfg.get("speed", 0))
        self.gauss = Gauss(cfg.get("seed", 1))
        self.chamber = chamber.from_config(cfg["chamber"])
        self.buses = {}
        for s in cfg.get("sensors", ()):
            bus = self.buses.get(s.get("bus", 0))
            if bus is None:
                bus = self.buses[s.get("bus", 0)] = Bus()
            bus.attach(s["addr"], self._model(s))

    def env(self):
        """(pressure_pa, temperature_k) of the gas now."""
        return self.chamber.state(self.clock.now_us() * 1e-6)

    def _model(self, s):
        chip = s["chip"]
        if chip in ("BMP388", "BMP390"):
            import bmp3_model

            return bmp3_model.BMP3Model(chip, self, s)
        raise ValueError("sim.json: unknown chip " + chip + " (supported: BMP388, BMP390)")

    def bus(self, bus_id):
        b = self.buses.get(bus_id)
        if b is None:
            b = self.buses[bus_id] = Bus()
        return b


_hw = None


def hardware():
    global _hw
    if _hw is None:
        with open("sim.json") as f:
            _hw = Hardware(json.load(f))
    return _hw
