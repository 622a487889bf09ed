# Marks this folder as the host package leakmon.hardware (scenarios, board data).
