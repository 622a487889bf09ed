# Raspberry Pi Pico (RP2040/RP2350): I2C0 on GP4 (SDA) / GP5 (SCL), USB-CDC link.
import time

import machine
import micropython

from link import StdioLink

SDA_PIN = 4
SCL_PIN = 5
I2C_FREQ = 400000
WDT_TIMEOUT_MS = 8000


class Board:
    name = "pico"
    TICKS_BITS = 30

    def __init__(self, cfg):
        self.ticks_us = time.ticks_us
        self.ticks_diff = time.ticks_diff
        self.ticks_add = time.ticks_add
        self.sleep_us = time.sleep_us
        self.link = StdioLink()
        # Binary frames may contain 0x03: it must not raise KeyboardInterrupt.
        # The STOP command or a reset gives the REPL back for reflashing.
        micropython.kbd_intr(-1)
        self.wdt = machine.WDT(timeout=WDT_TIMEOUT_MS) if cfg.get("watchdog", True) else None
        try:
            self.led = machine.Pin("LED", machine.Pin.OUT)
        except (TypeError, ValueError):
            self.led = machine.Pin(25, machine.Pin.OUT)

    def i2c_buses(self):
        i2c = machine.I2C(0, sda=machine.Pin(SDA_PIN), scl=machine.Pin(SCL_PIN), freq=I2C_FREQ)
        return [(0, i2c)]

    def feed_watchdog(self):
        if self.wdt is not None:
            self.wdt.feed()

    def release(self):
        micropython.kbd_intr(3)
