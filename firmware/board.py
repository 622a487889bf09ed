# Board profiles hand out the I2C buses, the link, the clock and the watchdog.
# board.load() picks the profile for the port the firmware runs on.
import sys


def load(cfg):
    p = sys.platform
    if p == "rp2":
        import board_rp2 as profile
    elif p == "linux":
        import board_sim as profile
    else:
        raise OSError("no board profile for platform " + p + " (have: rp2, linux)")
    return profile.Board(cfg)
