# The virtual board: the MicroPython unix port with the simulated `machine`
# (leakmon's vboard folder comes first on MICROPYPATH) and a virtual clock.
import machine
import vclock
import vhw

from link import StdioLink


class Board:
    name = "sim"
    TICKS_BITS = vclock.TICKS_BITS

    def __init__(self, cfg):
        clock = vhw.hardware().clock
        self.ticks_us = clock.ticks_us
        self.sleep_us = clock.sleep_us
        self.ticks_diff = vclock.ticks_diff
        self.ticks_add = vclock.ticks_add
        self.link = StdioLink()  # Ctrl-C stays on: command frames never hold 0x03 (wire.py)
        self.wdt = machine.WDT(timeout=8000)
        self.led = machine.Pin(25, machine.Pin.OUT)

    def i2c_buses(self):
        return [(bus_id, machine.I2C(bus_id)) for bus_id in sorted(vhw.hardware().buses)]

    def feed_watchdog(self):
        self.wdt.feed()

    def recover_bus(self, bus_id):
        vhw.hardware().bus(bus_id).recover()
        return True

    def reset(self):
        machine.reset()

    def release(self):
        pass  # nothing to hand back: the simulated watchdog never bites
