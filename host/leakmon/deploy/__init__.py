"""Putting firmware on boards: the raw REPL and flash."""
