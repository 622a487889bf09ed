"""The wire format, re-exported from the firmware's own module.

firmware/wire.py is the single source of truth: it runs on the node and is
shipped inside this package as leakmon.firmware.wire.
"""

from leakmon.firmware.wire import *  # noqa: F401,F403
