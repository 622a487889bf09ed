# pyboard v1.1 (STM32F405). Hardware I2C pins are fixed: bus 1 = X9 (SCL) / X10 (SDA),
# bus 2 = Y9 (SCL) / Y10 (SDA). Pin map: hardware/boards/pyboard.toml.
from board_hw import HardwareBoard

BUSES = ((1, None, None, 400000), (2, None, None, 400000))  # (bus, SDA, SCL, Hz); pins fixed
LED = "LED_RED"


class Board(HardwareBoard):
    name = "pyboard"
    BUSES = BUSES
    LED = LED
