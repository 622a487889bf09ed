"""TI TCA9548A I2C multiplexer: one channel of it looks like an I2C bus.

The mux has one register, the control byte: bit n connects downstream channel n
(0 disconnects all). A write of one byte sets it, a read of one byte returns it.

``MuxChannel(i2c, mux_addr, channel)`` offers the bus methods the sensor drivers
use (readfrom_mem_into, readfrom_mem, writeto_mem, scan) and selects its channel
before each transaction. All channels of one mux share one ``Mux`` state object,
which remembers the control byte last written, so consecutive transactions on
one channel cost no extra write; selecting a channel of one mux first
disconnects any other mux on the same bus, so two muxes never join their
channels. readfrom_mem_into and writeto_mem allocate nothing.

After a failed write to the mux its state is unknown; the next transaction
writes the control byte again.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


MUX_ADDR_FIRST = const(0x70)
MUX_ADDR_LAST = const(0x77)
CHANNELS = const(8)
_UNKNOWN = const(-1)

# (i2c, [Mux, ...]) for every bus that has muxes: one state object per mux.
_buses = []  # type: list[tuple[object, list[Mux]]]


class Mux:
    """The control-byte state of one TCA9548A, shared by its channels."""

    def __init__(self, i2c, addr, siblings):
        self.i2c = i2c
        self.addr = addr
        self.control = _UNKNOWN  # last value written, or unknown
        self.siblings = siblings  # every Mux on this bus, this one included
        self._buf = bytearray(1)

    def set(self, control):
        """Write the control byte (others on the bus are disconnected first)."""
        if control:
            for m in self.siblings:
                if m is not self and m.control != 0:
                    m.write(0)
        self.write(control)

    def write(self, control):
        b = self._buf
        b[0] = control
        self.control = _UNKNOWN
        self.i2c.writeto(self.addr, b)
        self.control = control

    def read(self):
        """The control byte as the mux reports it."""
        b = self._buf
        self.i2c.readfrom_into(self.addr, b)
        return b[0]


def mux(i2c, addr):
    """The one Mux object for the TCA9548A at addr on this bus."""
    if not MUX_ADDR_FIRST <= addr <= MUX_ADDR_LAST:
        raise ValueError("TCA9548A address must be 0x70..0x77, got 0x%02x" % addr)
    for bus, muxes in _buses:
        if bus is i2c:
            for m in muxes:
                if m.addr == addr:
                    return m
            m = Mux(i2c, addr, muxes)
            muxes.append(m)
            return m
    muxes = []
    m = Mux(i2c, addr, muxes)
    muxes.append(m)
    _buses.append((i2c, muxes))
    return m


def deselect_all(i2c):
    """Disconnect every channel of every known mux on this bus."""
    for bus, muxes in _buses:
        if bus is i2c:
            for m in muxes:
                m.write(0)


class MuxChannel:
    """Channel 0..7 of the TCA9548A at mux_addr, used like an I2C bus."""

    def __init__(self, i2c, mux_addr, channel):
        if not 0 <= channel < CHANNELS:
            raise ValueError("TCA9548A channel must be 0..7, got %d" % channel)
        self.i2c = i2c
        self.mux = mux(i2c, mux_addr)
        self.mux_addr = mux_addr
        self.channel = channel
        self._mask = 1 << channel

    def select(self):
        m = self.mux
        if m.control != self._mask:
            m.set(self._mask)

    def readfrom_mem_into(self, addr, memaddr, buf):
        self.select()
        self.i2c.readfrom_mem_into(addr, memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes):
        self.select()
        return self.i2c.readfrom_mem(addr, memaddr, nbytes)

    def writeto_mem(self, addr, memaddr, buf):
        self.select()
        self.i2c.writeto_mem(addr, memaddr, buf)

    def scan(self):
        """Addresses that answer on this channel only (not upstream, not the muxes)."""
        deselect_all(self.i2c)
        upstream = self.i2c.scan()
        self.select()
        return [a for a in self.i2c.scan() if a not in upstream]
