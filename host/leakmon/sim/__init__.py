"""The simulator: the virtual board, its supervisor and pty, scenarios, ground truth."""
