# The virtual board's hardware: built once from sim.json in the board's flash
# folder (written by the host's simboard), then reached through machine.I2C.
#
# Real silicon computes outside the MicroPython heap. The models here run inside
# the VM, so every bus transaction exempts itself from micropython.heap_lock():
# a firmware test under heap_lock then proves the firmware allocates nothing,
# while the models stay free to use floats.
import json
import math
import os
import random

import chamber
import micropython
import physics
import vclock

EIO = 5
ETIMEDOUT = 110


def _exempt():
    """Leave every level of heap_lock the caller holds; returns how many."""
    micropython.heap_lock()
    depth = micropython.heap_unlock()
    for _ in range(depth):
        micropython.heap_unlock()
    return depth


def _relock(depth):
    for _ in range(depth):
        micropython.heap_lock()


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


class Mux:
    """TCA9548A: a control byte whose bit n connects downstream channel n."""

    def __init__(self):
        self.control = 0
        self.channels = [Bus() for _ in range(8)]

    def write_raw(self, data):
        if len(data):
            self.control = data[len(data) - 1]

    def read_raw(self, buf):
        for i in range(len(buf)):
            buf[i] = self.control


class Bus:
    """One I2C bus: device models by 7-bit address, and TCA9548A muxes on it.

    Every transaction first exempts itself from heap_lock (see the top of this file).
    """

    def __init__(self):
        self.devices = {}
        self.muxes = {}
        # A stuck bus (a slave holding SDA low) from sim.json "buses": every
        # transaction times out until the firmware recovers the bus.
        self.clock = None
        self.stuck_from_us = None
        self.recoveries = 0

    def _held(self):
        if self.stuck_from_us is not None and self.clock.now_us() >= self.stuck_from_us:
            raise OSError(ETIMEDOUT)

    def recover(self):
        """Clock pulses and a STOP: a slave holding SDA finishes its byte and lets go."""
        if self.stuck_from_us is not None and self.clock.now_us() >= self.stuck_from_us:
            self.stuck_from_us = None
            self.recoveries += 1

    def attach(self, addr, model, mux_addr=None, mux_channel=0):
        if mux_addr is None:
            self.devices[addr] = model
            return
        mux = self.muxes.get(mux_addr)
        if mux is None:
            mux = self.muxes[mux_addr] = Mux()
        mux.channels[mux_channel].attach(addr, model)

    def scan(self):
        return sorted(list(self.devices) + list(self.muxes) + self._selected_addresses())

    def _selected_addresses(self):
        out = []
        for mux in self.muxes.values():
            for ch in range(8):
                if mux.control & (1 << ch):
                    out += mux.channels[ch].scan()
        return out

    def _device(self, addr):
        self._held()
        d = self.devices.get(addr)
        if d is not None:
            return d
        hits = []
        for mux in self.muxes.values():
            for ch in range(8):
                if mux.control & (1 << ch):
                    sub = mux.channels[ch]._device_or_none(addr)
                    if sub is not None:
                        hits.append(sub)
        if len(hits) != 1:  # absent, or two selected devices answering at once
            raise OSError(EIO)
        return hits[0]

    def _device_or_none(self, addr):
        try:
            return self._device(addr)
        except OSError:
            return None

    def _mux(self, addr):
        self._held()
        mux = self.muxes.get(addr)
        if mux is None:
            raise OSError(EIO)
        return mux

    # Each transaction leaves heap_lock first, before it makes any object.
    def read_into(self, addr, reg, buf):
        depth = _exempt()
        try:
            _board_faults_due()
            self._device(addr).read_into(reg, buf)
        finally:
            _relock(depth)

    def write(self, addr, reg, data):
        depth = _exempt()
        try:
            self._device(addr).write(reg, data)
        finally:
            _relock(depth)

    def writeto(self, addr, data):
        """A plain write (no register address): the mux control byte."""
        depth = _exempt()
        try:
            self._mux(addr).write_raw(data)
        finally:
            _relock(depth)

    def readfrom_into(self, addr, buf):
        depth = _exempt()
        try:
            self._mux(addr).read_raw(buf)
        finally:
            _relock(depth)


class Faulty:
    """Fault injection around a sensor model, from its sim.json entry: random NACKs
    ("nack_prob" per transaction), removal ("remove_at_s") and re-plug ("replug_at_s",
    after which the chip starts from power-on: the firmware must set it up again)."""

    def __init__(self, model, cfg, hw, make):
        self.model = model
        self.hw = hw
        self.make = make
        self.nack_prob = cfg.get("nack_prob", 0.0)
        self.remove_at_us = int(cfg["remove_at_s"] * 1e6) if "remove_at_s" in cfg else None
        self.replug_at_us = int(cfg["replug_at_s"] * 1e6) if "replug_at_s" in cfg else None
        self.replugged = False
        self.stuck_from_us = int(cfg["stuck_from_s"] * 1e6) if "stuck_from_s" in cfg else None
        self.stuck_until_us = int(cfg["stuck_until_s"] * 1e6) if "stuck_until_s" in cfg else None
        self.frozen = {}  # register -> the bytes a stuck chip keeps returning
        self.nacks = 0  # injected NACKs, for the tests to compare with the node's count
        self.absent_hits = 0

    def _check(self):
        now = self.hw.clock.now_us()
        if self.remove_at_us is not None and now >= self.remove_at_us:
            if self.replug_at_us is None or now < self.replug_at_us:
                self.absent_hits += 1
                raise OSError(EIO)
            if not self.replugged:
                self.replugged = True
                self.model = self.make()  # power-on state
        if self.nack_prob and random.random() < self.nack_prob:
            self.nacks += 1
            raise OSError(EIO)

    def _stuck(self):
        now = self.hw.clock.now_us()
        return (self.stuck_from_us is not None and now >= self.stuck_from_us
                and (self.stuck_until_us is None or now < self.stuck_until_us))

    def read_into(self, reg, buf):
        self._check()
        if not self._stuck():
            self.model.read_into(reg, buf)
            return
        key = (reg, len(buf))
        if key not in self.frozen:
            self.model.read_into(reg, buf)
            self.frozen[key] = bytes(buf)
        buf[:] = self.frozen[key]

    def write(self, reg, data):
        self._check()
        self.model.write(reg, data)


# chip name -> (model module, class); each model is Model(chip, hw, cfg) with
# read_into(reg, buf) and write(reg, data), register-level like the silicon.
MODELS = {
    "BMP388": ("bmp3_model", "BMP3Model"),
    "BMP390": ("bmp3_model", "BMP3Model"),
    "BMP280": ("bmp280_model", "BMP280Model"),
    "BME280": ("bmp280_model", "BMP280Model"),
    "DPS310": ("dps310_model", "DPS310Model"),
    "LPS22HB": ("lps22_model", "LPS22Model"),
    "LPS22HH": ("lps22_model", "LPS22Model"),
    "MS5611": ("ms5611_model", "MS5611Model"),
}


class SegmentView:
    """What one sensor model gets as its `hw`: the board's clock and noise source,
    and env() of the segment the sensor sits in."""

    def __init__(self, hw, segment):
        self.hw = hw
        self.segment = segment
        self.clock = hw.clock
        self.gauss = hw.gauss

    def env(self):
        return self.hw.env(self.segment)


class Hardware:
    """Buses and sensor models from sim.json. The gas comes from "physics" (segments,
    hatches, leaks: physics.Plant) or, in older configs, one "chamber" (chamber.Chamber)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.clock = vclock.VClock(cfg.get("speed", 0))
        self.gauss = Gauss(cfg.get("seed", 1))
        self.plant = None
        self.chamber = None
        if "physics" in cfg:
            self.plant = physics.Plant(cfg["physics"])
            self.n_segments = len(self.plant.vol)
        else:
            self.chamber = chamber.from_config(cfg["chamber"])
            self.n_segments = 1
        self.buses = {}
        self.faulty = []  # Faulty wrappers, in sensor order
        for s in cfg.get("sensors", ()):
            bus = self.buses.get(s.get("bus", 0))
            if bus is None:
                bus = self.buses[s.get("bus", 0)] = Bus()
            bus.attach(s["addr"], self._model(s), s.get("mux_addr"), s.get("mux_channel", 0))

    def env(self, segment=0):
        """(pressure_pa, temperature_k) of the gas in a segment now."""
        t_s = self.clock.now_us() * 1e-6
        if self.plant is not None:
            return self.plant.state(segment, t_s)
        return self.chamber.state(t_s)

    def _model(self, s):
        chip = s["chip"]
        spec = MODELS.get(chip)
        if spec is None:
            raise ValueError("sim.json: unknown chip " + chip + " (supported: " + ", ".join(sorted(MODELS)) + ")")
        cls = getattr(__import__(spec[0]), spec[1])
        seg = s.get("segment", 0)
        if not (isinstance(seg, int) and 0 <= seg < self.n_segments):
            raise ValueError("sim.json: sensor segment " + repr(seg) + " (" + str(self.n_segments) + " segments)")
        view = SegmentView(self, seg)
        model = cls(chip, view, s)
        if "nack_prob" in s or "remove_at_s" in s or "stuck_from_s" in s:
            model = Faulty(model, s, self, lambda: cls(chip, view, s))
            self.faulty.append(model)
        return model

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
        _bus_faults(_hw)
        _board_faults(_hw)
    return _hw


FAULTS_DONE = ".vboard_faults_done"  # survives the board's own reset (device time restarts)


def _board_faults(hw):
    """sim.json "board": reset_at_s, disconnect_at_s (+ disconnect_s): each fires once."""
    spec = hw.cfg.get("board", {})
    try:
        with open(FAULTS_DONE) as f:
            done = f.read().split()
    except OSError:
        done = []
    faults = []
    if "reset_at_s" in spec and "reset" not in done:
        faults.append((int(spec["reset_at_s"] * 1e6), "reset", ""))
    if "disconnect_at_s" in spec and "disconnect" not in done:
        faults.append((int(spec["disconnect_at_s"] * 1e6), "disconnect", str(spec.get("disconnect_s", 1.0))))
    faults.sort()
    hw.board_faults = faults


def _board_faults_due():
    """Fire the board faults whose time has come: a reset, or the cable pulled. The
    supervisor does them (leakmon.sim.supervisor), asked over its status fifo."""
    hw = _hw
    if hw is None or not hw.board_faults or hw.board_faults[0][0] > hw.clock.now_us():
        return
    _, action, arg = hw.board_faults.pop(0)
    with open(FAULTS_DONE, "a") as f:
        f.write(action + "\n")
    if action == "reset":
        import machine

        machine.reset()
    path = os.getenv("LEAKMON_VBOARD_STATUS")
    if path:
        with open(path, "a") as f:
            f.write("disconnect " + arg + "\n")


def _bus_faults(hw):
    for bus_id, spec in hw.cfg.get("buses", {}).items():
        bus = hw.bus(int(bus_id))
        bus.clock = hw.clock
        if "stuck_from_s" in spec:
            bus.stuck_from_us = int(spec["stuck_from_s"] * 1e6)
