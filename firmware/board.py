# Board profiles hand out the I2C buses, the link, the clock and the watchdog.
# board.load() picks the profile for the port the firmware runs on.
import sys

PROFILES = {
    "rp2": "board_rp2",
    "esp32": "board_esp32",
    "pyboard": "board_stm32",
    "linux": "board_sim",  # the virtual board: the unix port with simulated hardware
}


def load(cfg):
    name = PROFILES.get(sys.platform)
    if name is None:
        raise OSError("no board profile for platform %s (have: %s)" % (sys.platform, ", ".join(PROFILES)))
    return __import__(name).Board(cfg)
