"""Sensor compensation: raw counts and calibration blocks in, SI units out.

One module per chip family; each turns the calibration block the node sends once
into coefficients and compensates whole arrays of raw counts in float64.
"""
