# The node's byte link to the host: USB-CDC (or the unix port's stdio on the
# virtual board). write() takes a buffer; read_byte() never blocks.
import select
import sys


class StdioLink:
    def __init__(self):
        self._out = sys.stdout.buffer
        self._in = sys.stdin.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._rx = bytearray(1)

    def write(self, buf):
        self._out.write(buf)

    def read_byte(self):
        """Next byte from the host, or -1 if none is waiting. Allocates nothing."""
        for _ in self._poll.ipoll(0):
            if self._in.readinto(self._rx) == 1:
                return self._rx[0]
        return -1
