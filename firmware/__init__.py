# Marks this folder as the host package leakmon.firmware, so the host imports the
# very wire.py the node runs. Not deployed to boards.
