# ESP32 DevKitC (ESP32-WROOM-32). Pin map: hardware/boards/esp32.toml.
from board_hw import HardwareBoard

BUSES = ((0, 21, 22, 400000), (1, 25, 26, 400000))  # (bus, SDA GPIO, SCL GPIO, Hz)
LED = 2


class Board(HardwareBoard):
    name = "esp32"
    BUSES = BUSES
    LED = LED
