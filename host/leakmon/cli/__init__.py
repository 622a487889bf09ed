"""The command line: main, the session the commands share, the commands, the live view."""
