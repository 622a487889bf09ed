# Sensor discovery: every configured bus, and behind every TCA9548A found on it,
# each address asked who it is. Every driver checks its chip id before it writes
# anything, so probing a chip with the wrong driver leaves it be.
import wire

# (module, class, addresses) in probe order. Every driver checks the chip id before
# it writes anything and raises OSError if it is not its chip; MS5611 has no id
# register (its PROM CRC identifies it), so it is tried last. A driver module that
# is not on the board is skipped.
DRIVERS = (
    ("bmp3xx", "BMP3XX", (0x77, 0x76)),
    ("dps310", "DPS310", (0x77, 0x76)),
    ("bmp280", "BMP280", (0x77, 0x76)),
    ("lps22", "LPS22", (0x5C, 0x5D)),
    ("ms5611", "MS5611", (0x77, 0x76)),
)


def _driver_class(module, name):
    try:
        return getattr(__import__(module), name)
    except ImportError:
        return None


def probe(i2c, addr):
    """The driver of the sensor at addr, or None."""
    for module, name, addresses in DRIVERS:
        if addr in addresses:
            cls = _driver_class(module, name)
            if cls is None:
                continue
            try:
                return cls(i2c, addr)
            except OSError:
                pass
    return None


# Control bytes written to a candidate TCA9548A, each of which it must read back.
# 0xA6 and 0xAC are also MS5611 PROM-read commands, harmless to one at 0x76/0x77
# (to a register chip a one-byte write only moves its register pointer); 0x00
# goes last and leaves a mux with every channel disconnected.
_MUX_PATTERNS = (0xA6, 0xAC, 0x00)


def _is_mux(i2c, addr):
    """True if addr reads back every control byte written to it, as a TCA9548A does."""
    b = bytearray(1)
    try:
        for pattern in _MUX_PATTERNS:
            b[0] = pattern
            i2c.writeto(addr, b)
            b[0] = pattern ^ 0xFF
            i2c.readfrom_into(addr, b)
            if b[0] != pattern:
                return False
    except OSError:
        return False
    return True


def _find_muxes(i2c, present):
    """Addresses of the TCA9548A muxes on a bus, each left disconnected."""
    try:
        import tca9548a
    except ImportError:
        return []
    muxes = []
    for addr in present:
        if tca9548a.MUX_ADDR_FIRST <= addr <= tca9548a.MUX_ADDR_LAST and _is_mux(i2c, addr):
            try:
                tca9548a.mux(i2c, addr).write(0)  # its shared state now knows it
            except OSError:
                continue
            muxes.append(addr)
    return muxes


def _discover_behind(bus_id, i2c, mux_addr):
    """Sensors on each channel of one mux, probed through a MuxChannel."""
    import tca9548a

    found = []
    for ch in range(tca9548a.CHANNELS):
        port = tca9548a.MuxChannel(i2c, mux_addr, ch)
        try:
            behind = port.scan()
        except OSError:
            continue
        for addr in behind:
            drv = probe(port, addr)
            if drv is not None:
                found.append((bus_id, ch, addr, drv))
    return found


def discover(buses):
    """[(bus_id, mux_channel, addr, driver)] for every sensor that identifies itself.

    Sensors straight on a bus get mux_channel NO_MUX; TCA9548A muxes (0x70..0x77,
    told from sensors at 0x76/0x77 by reading back their control byte) have each
    of their channels scanned and probed. A device behind a channel that shares
    its address with one upstream is not probed (they would answer together).
    """
    found = []
    for bus_id, i2c in buses:
        try:
            present = i2c.scan()
            muxes = _find_muxes(i2c, present)
            if muxes:
                present = i2c.scan()  # again, with every channel disconnected
        except OSError:
            continue
        for addr in present:
            if addr in muxes:
                continue
            drv = probe(i2c, addr)
            if drv is not None:
                found.append((bus_id, wire.NO_MUX, addr, drv))
        for mux_addr in muxes:
            found.extend(_discover_behind(bus_id, i2c, mux_addr))
    return found
