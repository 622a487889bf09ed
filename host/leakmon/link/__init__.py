"""The node link: a serial node, reconnects, the recording format and replay."""
