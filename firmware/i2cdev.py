"""What every sensor driver does on its bus: one register byte in or out, the
chip-id check, and waits that are always bounded.

A driver subclasses I2CDevice and keeps only what its chip does differently
(micropython-lib style: registers as ``_NAME = const(0x..)``, buffers made once,
``readfrom_mem_into``). A wrong chip id and a wait that runs out both raise
OSError, so discovery can try the next driver and the node reports the fault.
Nothing here allocates once the device is set up, except the messages of those
errors.
"""

import time


class I2CDevice:
    """A chip at ``address`` on ``i2c`` (a machine.I2C or a mux channel)."""

    def __init__(self, i2c, address):
        self.i2c = i2c
        self.address = address
        self._b1 = bytearray(1)

    def _read_u8(self, reg):
        self.i2c.readfrom_mem_into(self.address, reg, self._b1)
        return self._b1[0]

    def _write_u8(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.address, reg, self._b1)

    def _write_checked(self, reg, value, name):
        """Write a setting and read it back: a chip that did not take it raises OSError."""
        self._write_u8(reg, value)
        got = self._read_u8(reg)
        if got != value:
            raise OSError("%s at 0x%02x: %s reads 0x%02x after writing 0x%02x" % (
                type(self).__name__, self.address, name, got, value))

    def _identify(self, reg, ids, chips, what, reg_name="chip id"):
        """Read the id register: sets chip_id and the wire chip code (chips[i] for
        ids[i]); anything else raises OSError before a single write."""
        got = self._read_u8(reg)
        for i in range(len(ids)):
            if got == ids[i]:
                self.chip_id = got
                self.chip = chips[i]
                return
        raise OSError("no %s at 0x%02x: %s 0x%02x (want %s)" % (
            what, self.address, reg_name, got, " or ".join("0x%02x" % i for i in ids)))

    def _wait_bits(self, reg, mask, want, tries, poll_ms, what):
        """Until reg & mask == want: poll_ms, then a read, at most tries times. A NACK
        counts as not yet (chips NACK while they restart); then OSError naming what."""
        for _ in range(tries):
            time.sleep_ms(poll_ms)
            try:
                if self._read_u8(reg) & mask == want:
                    return
            except OSError:
                pass
        raise OSError("%s at 0x%02x: %s %d ms" % (
            type(self).__name__, self.address, what, tries * poll_ms))

    def _soft_reset(self, reg, cmd, status_reg, mask, want, tries, poll_ms):
        """Write the reset command, then wait (bounded) for the status bits."""
        self._write_u8(reg, cmd)
        self._wait_bits(status_reg, mask, want, tries, poll_ms, "not ready after soft reset, waited")
