# Virtual clock of the simulated board: device microseconds that wrap at 2**30
# like ticks_us on a 32-bit port. speed == 0 runs as fast as the link takes data
# (sleeping only advances virtual time: deterministic for a seed); speed > 0 runs
# device time at that multiple of wall time.
import time

TICKS_BITS = 30
TICKS_PERIOD = 1 << TICKS_BITS
TICKS_MASK = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD >> 1


def ticks_diff(a, b):
    return ((a - b + _HALF) & TICKS_MASK) - _HALF


def ticks_add(t, d):
    return (t + d) & TICKS_MASK


class VClock:
    def __init__(self, speed=0):
        # Integer ratio so that reading the clock allocates nothing.
        self.num = int(round(speed * 1000))
        self.den = 1000
        self.now = 0  # unwrapped virtual microseconds
        self._real0 = time.ticks_us()

    def _advance(self):
        if self.num:
            real = time.ticks_diff(time.ticks_us(), self._real0)
            v = real * self.num // self.den
            if v > self.now:
                self.now = v

    def now_us(self):
        """Unwrapped device time in microseconds (for the hardware models)."""
        self._advance()
        return self.now

    def ticks_us(self):
        self._advance()
        return self.now & TICKS_MASK

    def sleep_us(self, us):
        if us <= 0:
            return
        if self.num:
            time.sleep_us(us * self.den // self.num)
            self._advance()
        else:
            self.now += us
