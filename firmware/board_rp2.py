# Raspberry Pi Pico / Pico W / Pico 2 (RP2040, RP2350). Pin map: hardware/boards/pico.toml.
from board_hw import HardwareBoard

BUSES = ((0, 4, 5, 400000), (1, 2, 3, 400000))  # (bus, SDA GPIO, SCL GPIO, Hz)
LED = "LED"


class Board(HardwareBoard):
    name = "pico"
    BUSES = BUSES
    LED = LED
