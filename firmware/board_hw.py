# What the hardware board profiles share: I2C buses from a pin table, the USB/UART
# stdio link, ticks_us clock, watchdog and LED. A profile only names its pins.
import time

import machine

from link import StdioLink


class HardwareBoard:
    name = "?"
    TICKS_BITS = 30  # ticks_us wraps at 2**30 on every 32-bit port
    # ((bus_id, sda_pin, scl_pin, freq_hz),); pins None = fixed by the port
    BUSES = ()  # type: tuple[tuple[int, int | None, int | None, int], ...]
    LED = None  # type: int | str | None
    WDT_TIMEOUT_MS = 8000

    def __init__(self, cfg):
        self.ticks_us = time.ticks_us
        self.ticks_diff = time.ticks_diff
        self.ticks_add = time.ticks_add
        self.sleep_us = time.sleep_us
        # Ctrl-C stays on, as on any MicroPython board: the host stuffs its command
        # frames so that they never hold 0x03 (wire.py, PROTOCOL.md v1.1).
        self.link = StdioLink()
        self.wdt = machine.WDT(timeout=self.WDT_TIMEOUT_MS) if cfg.get("watchdog", True) else None
        self.led = None
        if self.LED is not None:
            try:
                self.led = machine.Pin(self.LED, machine.Pin.OUT)
            except (TypeError, ValueError):
                pass

    def i2c_buses(self):
        out = []  # type: list[tuple[int, machine.I2C]]
        for bus_id, sda, scl, freq in self.BUSES:
            if sda is None:
                out.append((bus_id, machine.I2C(bus_id, freq=freq)))
            else:
                out.append((bus_id, machine.I2C(bus_id, sda=machine.Pin(sda), scl=machine.Pin(scl), freq=freq)))
        return out

    def recover_bus(self, bus_id):
        """Free a bus a slave holds: nine SCL pulses, a STOP, a fresh I2C. False where
        the port fixes the pins (the peripheral's own reset is all there is)."""
        for bid, sda, scl, freq in self.BUSES:
            if bid != bus_id or sda is None or scl is None:
                continue
            clk = machine.Pin(scl, machine.Pin.OPEN_DRAIN, value=1)
            dat = machine.Pin(sda, machine.Pin.OPEN_DRAIN, value=1)
            for _ in range(9):
                clk.value(0)
                time.sleep_us(5)
                clk.value(1)
                time.sleep_us(5)
            dat.value(0)
            time.sleep_us(5)
            dat.value(1)
            machine.I2C(bid, sda=machine.Pin(sda), scl=machine.Pin(scl), freq=freq)
            return True
        return False

    def feed_watchdog(self):
        if self.wdt is not None:
            self.wdt.feed()

    def reset(self):
        machine.reset()

    def release(self):
        """Back to the REPL (the REPL command, or Ctrl-C). The watchdog cannot be stopped
        once started (rp2), so a timer keeps feeding it while a person, mpremote or
        `leakmon flash` uses the REPL; a reset ends that."""
        if self.wdt is not None:
            wdt = self.wdt
            try:
                self._feeder = machine.Timer(-1, period=1000, mode=machine.Timer.PERIODIC,
                                             callback=lambda t: wdt.feed())
            except (TypeError, ValueError, OSError):
                self._feeder = machine.Timer(0, period=1000, mode=machine.Timer.PERIODIC,
                                             callback=lambda t: wdt.feed())
