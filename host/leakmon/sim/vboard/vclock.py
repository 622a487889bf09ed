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
    """Device time moves only when the firmware sleeps, so a run is the same for a
    seed at any speed; speed > 0 only paces those sleeps against the wall clock."""

    def __init__(self, speed=0):
        # Integer ratio so that reading the clock allocates nothing.
        self.num = int(round(speed * 1000))
        self.den = 1000
        self.now = 0  # unwrapped virtual microseconds
        self._real0 = time.ticks_us()

    def now_us(self):
        """Unwrapped device time in microseconds (for the hardware models)."""
        return self.now

    def ticks_us(self):
        return self.now & TICKS_MASK

    def sleep_us(self, us):
        if us <= 0:
            return
        self.now += us
        if self.num:
            due = time.ticks_add(self._real0, self.now * self.den // self.num)
            wait = time.ticks_diff(due, time.ticks_us())
            if wait > 0:
                time.sleep_us(wait)
