"""The virtual board's hardware, as seen from inside the MicroPython VM.

These modules run in the MicroPython unix port next to the real firmware: a
`machine` module with register-level I2C sensor models and a virtual clock, and an
`os` whose directory listing gives file sizes as a board's filesystem does. They
are written in the subset CPython also runs, so the host can evaluate the same
physics to know the ground truth.
"""
