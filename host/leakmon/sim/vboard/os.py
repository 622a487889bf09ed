# `os` for the virtual board: the unix port's own, with an ilistdir that gives each
# file's size as a board's filesystem (FAT, littlefs) does. The unix port's entries
# have no size, so `mpremote fs ls` would list every file as 0 bytes.
# (This folder comes first on MICROPYPATH, so `import os` finds this file.)
try:
    import uos as _os  # the built-in, under its other name
except ImportError:  # a port without the u-names: import it with this folder hidden
    import sys

    _me = sys.modules["os"]
    _path = sys.path[:]
    sys.path.clear()
    del sys.modules["os"]
    try:
        import os as _os
    finally:
        sys.path.extend(_path)
        sys.modules["os"] = _me

for _name in dir(_os):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_os, _name)

_DIR = 0x4000
_FILE = 0x8000


def ilistdir(path="."):
    """(name, type, inode, size) per entry, as on a board; size 0 for a folder."""
    sep = b"/" if isinstance(path, bytes) else "/"
    for entry in _os.ilistdir(path):
        name, kind = entry[0], entry[1]
        size = 0
        if kind == _FILE:
            try:
                size = _os.stat(path + sep + name)[6]
            except OSError:
                pass
        yield (name, kind, entry[2], size)
