"""The virtual board's supervisor: makes the MicroPython unix port answer on a
pseudo-terminal the way a board answers on /dev/ttyACM0.

It relays an outer pty (the device users open) to the interpreter running on an
inner pty with cwd = the board's flash folder, and adds what the unix port lacks:
boot.py then main.py at start, a soft reset when the interpreter exits on Ctrl-D
(`MPY: soft reboot`, and back into the raw REPL if the client was in it), and
Ctrl-C delivered as SIGINT while code runs with kbd_intr enabled, dropping the input
the program had not read (a board's USB-CDC does the same). Both ptys are raw.

Run as `python -m leakmon.sim.supervisor`; it reports one event per line on stdout
(`port PATH`, `boot N`, `main STATUS`, `exit CODE`) and reads commands on stdin
(`reset`, `disconnect SECONDS`); end of stdin shuts it down (its parent died).
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import signal
import sys
import time
from pathlib import Path

from leakmon.sim.vpty import Interpreter, Outer, sigint_caught

SOFT_REBOOT = b"MPY: soft reboot\r\n"
RAW_MARK = b"raw REPL; CTRL-B to exit"
FRIENDLY_MARK = b'Type "help()" for more information.'
MARK_TAIL = max(len(RAW_MARK), len(FRIENDLY_MARK))
CTRL_A, CTRL_C = 0x01, 0x03
TIOCPKT_FLUSHREAD = 0x01  # the client flushed its input (pyserial does on open)
HIGH_WATER = 64 * 1024  # bytes queued in either direction before reading stops
CHUNK = 16 * 1024
TICK_S = 0.05
INTERRUPT_HOLD_S = 0.5  # client input waits this long at most for a Ctrl-C to land
MIN_BOOT_GAP_S = 0.2  # a boot loop costs at most 5 interpreter starts per second
DROP_UNREAD_S = 2.0  # with --drop-unread: output nobody took for this long is dropped

# Runs inside MicroPython, in __main__ like a board's pyexec: boot.py, then main.py
# unless soft-reset from the raw REPL, both with Ctrl-C enabled as on a board (the
# firmware keeps it: its commands never hold 0x03); a traceback goes on the link,
# the status to the supervisor (main 0 returned, 1 raised, 2 interrupted).
BOOTSTRAP = """\
import sys, micropython
def _leakmon_run(name):
    try:
        open(name).close()
    except OSError:
        return
    micropython.kbd_intr(3)
    st = 0
    try:
        execfile(name)
    except SystemExit:
        raise
    except BaseException as e:
        sys.print_exception(e)
        st = 1 if isinstance(e, Exception) else 2
        with open({status!r}, 'a') as f:
            f.write('log ' + name + ': ' + repr(e)[:200] + '\\n')
    micropython.kbd_intr(3)
    if name == 'main.py':
        with open({status!r}, 'a') as f:
            f.write('main %d\\n' % st)
_leakmon_run('boot.py')
if {run_main!r}:
    _leakmon_run('main.py')
del _leakmon_run
"""


class Supervisor:
    def __init__(self, micropython: str, flash: Path, mpypath: str, status: Path, link: Path | None = None,
                 drop_unread: bool = False) -> None:
        self.micropython = micropython
        self.flash = flash
        # machine.reset() on the board says "reset" on the status fifo before it exits.
        self.env = dict(os.environ, MICROPYPATH=mpypath, LEAKMON_VBOARD_STATUS=str(status))
        self.reset_requested = False
        self.status_fd = -1
        self.status_path = status
        self.link = link
        # A board that publishes over its network must not wait for a USB reader that is not
        # there: as a board's USB-CDC with no host, it drops what nobody reads (not by default:
        # a slow reader of a board at --speed 0 relies on the link's back-pressure).
        self.drop_unread = drop_unread
        self.client_took_at = time.monotonic()
        self.raw = False  # the client is in the raw REPL (seen from the board's output)
        self.to_client = bytearray()
        self.sent_unseen = False  # written to the client since we last knew no flush was pending
        self.to_board = bytearray()
        self.hold_until = 0.0  # client input held while a Ctrl-C lands
        self.tail = b""
        self.boots = 0
        self.stopping = False
        self.control = b""
        self.reconnect_at = 0.0
        self.outer: Outer | None = None
        self.interp: Interpreter | None = None

    # -- events and log --------------------------------------------------------
    def event(self, text: str) -> None:
        try:
            os.write(sys.stdout.fileno(), (text + "\n").encode())
        except (BlockingIOError, BrokenPipeError):
            pass  # nobody listening: events are advisory

    def log(self, text: str) -> None:
        print(f"supervisor: {text}", file=sys.stderr, flush=True)

    # -- board life ------------------------------------------------------------
    def boot(self, run_main: bool) -> None:
        gap = MIN_BOOT_GAP_S - (time.monotonic() - (self.interp.started if self.interp else 0.0))
        if gap > 0:
            time.sleep(gap)
        code = BOOTSTRAP.format(status=str(self.status_path), run_main=run_main)
        self.interp = Interpreter([self.micropython, "-i", "-c", code], self.flash, self.env)
        self.boots += 1
        self.hold_until = 0.0
        self.to_board.clear()
        if self.raw:
            self.to_board += bytes([CTRL_A])  # back into the raw REPL, as a board does
        self.event(f"boot {self.boots}")

    def interpreter_ended(self, soft: bool = True, grace_s: float = 0.5) -> None:
        assert self.interp is not None
        code = self.interp.stop(0.0 if self.stopping else grace_s)
        if self.status_fd >= 0:
            self.read_status(self.status_fd)  # did the board ask for a reset before it went?
        if self.reset_requested and not self.stopping:
            self.reset_requested = False
            self.raw, soft = False, False  # machine.reset(): a hard reset, main.py runs
        self.event(f"exit {code}")
        self.log(f"interpreter exit {code}")
        if self.stopping:
            return
        if soft:
            self.to_client += SOFT_REBOOT
        self.boot(run_main=not self.raw)

    def hard_reset(self) -> None:
        """Like the reset button: no soft-reboot text, friendly REPL, main.py runs."""
        self.raw = False
        self.interpreter_ended(soft=False, grace_s=0.0)

    # -- relay -----------------------------------------------------------------
    def from_board(self, data: bytes) -> None:
        window = self.tail + data
        ends = [(at + len(mark), mark is RAW_MARK) for mark in (RAW_MARK, FRIENDLY_MARK)
                if (at := window.rfind(mark)) >= 0 and at + len(mark) > len(self.tail)]
        if ends:  # the latest banner in the new bytes tells which REPL the board is in
            self.raw = max(ends)[1]
        self.tail = window[-MARK_TAIL:]
        if self.outer is not None:  # a disconnected USB port drops what the board sends
            self.to_client += data

    def from_client(self, data: bytes) -> None:
        while data:
            i = data.find(CTRL_C)
            if i < 0:
                self.to_board += data
                return
            self.to_board += data[:i]
            data = data[i + 1:]
            if time.monotonic() < self.hold_until:
                continue  # one interrupt at a time: a second SIGINT makes the unix port exit
            if self.interp is not None and sigint_caught(self.interp.proc.pid):
                try:
                    os.kill(self.interp.proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    continue  # it just ended: the board reboots anyway
                self.to_board.clear()  # as a board's USB-CDC does: unread input is dropped
                self.interp.flush_input()
                self.hold_until = time.monotonic() + INTERRUPT_HOLD_S
            else:
                self.to_board.append(CTRL_C)  # at a prompt, or kbd_intr(-1): a plain byte

    def holding(self) -> bool:
        if self.hold_until and (time.monotonic() >= self.hold_until or
                                self.interp is None or not sigint_caught(self.interp.proc.pid)):
            self.hold_until = 0.0
        return self.hold_until > 0.0

    def read_outer(self) -> None:
        assert self.outer is not None
        try:
            pkt = os.read(self.outer.master, CHUNK + 1)
        except (BlockingIOError, OSError):
            return
        if pkt[:1] == b"\x00":
            self.from_client(pkt[1:])
        elif pkt and pkt[0] & TIOCPKT_FLUSHREAD:
            # Opening the port flushes what the board sent before: the kernel dropped what we
            # had written, and to_client follows it. But if we wrote since we last saw no flush
            # pending, that write may have come after the flush and reached the client; then
            # dropping to_client would cut a hole in the stream (a real port loses only what
            # came before the open), so it goes on.
            if not self.sent_unseen:
                self.to_client.clear()
            self.sent_unseen = False

    def drain_inner(self) -> None:
        """Relay what the interpreter has written and not yet been read (bounded)."""
        assert self.interp is not None
        for _ in range(64):
            r, _, _ = select.select([self.interp.master], [], [], 0.05)
            if not r:
                return
            try:
                data = os.read(self.interp.master, CHUNK)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self.from_board(data)

    def read_inner(self) -> None:
        assert self.interp is not None
        try:
            data = os.read(self.interp.master, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if data:
            self.from_board(data)
        else:  # EIO: every holder of the inner slave is gone, the interpreter ended
            self.interpreter_ended()

    @staticmethod
    def _write(fd: int, buf: bytearray) -> None:
        try:
            n = os.write(fd, buf[:CHUNK])
        except (BlockingIOError, InterruptedError):
            return
        del buf[:n]

    # -- control ---------------------------------------------------------------
    def read_control(self) -> None:
        data = os.read(sys.stdin.fileno(), 1024)
        if not data:
            self.stopping = True
            return
        self.control += data
        while b"\n" in self.control:
            line, self.control = self.control.split(b"\n", 1)
            self.command(line.decode(errors="replace").split())

    def command(self, words: list[str]) -> None:
        if words == ["reset"]:
            self.hard_reset()
        elif len(words) == 2 and words[0] == "disconnect" and self.outer is not None:
            self.outer.close()
            self.outer = None
            self.to_client.clear()
            self.reconnect_at = time.monotonic() + max(0.0, min(float(words[1]), 60.0))
            self.event("disconnected")
        elif words:
            self.log(f"unknown command {' '.join(words)!r}")

    def connect(self) -> None:
        self.outer = Outer(self.link)
        self.event(f"port {self.outer.path}")

    def read_status(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("main "):
                self.event(line)
            elif line == "reset":
                self.reset_requested = True
            elif line.startswith("disconnect "):  # the scenario pulls the cable
                self.command(line.split())
            self.log(line)

    # -- main loop -------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        if self.status_path.exists():
            self.status_path.unlink()
        os.mkfifo(self.status_path)
        status_fd = self.status_fd = os.open(self.status_path, os.O_RDONLY | os.O_NONBLOCK)
        keep_fd = os.open(self.status_path, os.O_WRONLY)  # never EOF between writers
        os.set_blocking(sys.stdout.fileno(), False)
        self.connect()
        self.boot(run_main=True)
        try:
            while not self.stopping:
                self.step(status_fd)
        finally:
            self.stopping = True
            if self.interp is not None:
                self.interpreter_ended(soft=False)
            if self.outer is not None:
                self.outer.close()
            os.close(status_fd)
            os.close(keep_fd)
            self.status_path.unlink(missing_ok=True)
        return 0

    def step(self, status_fd: int) -> None:
        assert self.interp is not None
        if self.outer is None and time.monotonic() >= self.reconnect_at:
            self.connect()
        holding = self.holding()
        rd = [sys.stdin.fileno(), status_fd]
        wr = []
        if len(self.to_client) < HIGH_WATER:
            rd.append(self.interp.master)
        if self.to_board and not holding:
            wr.append(self.interp.master)
        if self.outer is not None:
            if len(self.to_board) < HIGH_WATER:
                rd.append(self.outer.master)
            if self.to_client:
                wr.append(self.outer.master)
        try:
            r, w, _ = select.select(rd, wr, [], 0.01 if holding else TICK_S)
        except InterruptedError:
            return
        if self.outer is not None and self.outer.master in rd and self.outer.master not in r:
            self.sent_unseen = False  # no flush (no packet at all) was pending at select()
        if sys.stdin.fileno() in r:
            self.read_control()
        if status_fd in r:
            self.read_status(status_fd)
            if self.reset_requested:  # machine.reset() waits for this: restart it now,
                self.drain_inner()  # once what it sent before (the RESET's ACK) is relayed
                self.interpreter_ended(soft=False, grace_s=0.0)
                return
        if self.outer is not None and self.outer.master in r:
            self.read_outer()
        if self.outer is not None and self.outer.master in w:
            before = len(self.to_client)
            self._write(self.outer.master, self.to_client)
            if len(self.to_client) < before:
                self.client_took_at = time.monotonic()
                self.sent_unseen = True
        if not self.to_client:
            self.client_took_at = time.monotonic()
        elif (self.drop_unread and len(self.to_client) >= HIGH_WATER
              and time.monotonic() - self.client_took_at > DROP_UNREAD_S):
            self.to_client.clear()  # nobody reads the port: the board goes on
        if self.interp.master in w:
            self._write(self.interp.master, self.to_board)
        if self.interp.master in r:
            self.read_inner()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leakmon.sim.supervisor", description=__doc__)
    p.add_argument("--micropython", required=True)
    p.add_argument("--flash", type=Path, required=True, help="the board's flash folder (the interpreter's cwd)")
    p.add_argument("--mpypath", required=True, help="MICROPYPATH for the interpreter")
    p.add_argument("--status", type=Path, required=True, help="a path for the status FIFO (not in the flash folder)")
    p.add_argument("--link", type=Path, help="keep a symlink to the device here")
    p.add_argument("--drop-unread", action="store_true",
                   help=f"drop what the board sends once nobody has read the port for {DROP_UNREAD_S:g} s")
    a = p.parse_args(argv)
    try:
        return Supervisor(a.micropython, a.flash, a.mpypath, a.status, a.link, a.drop_unread).run()
    except OSError as e:  # the link's folder missing, no ptys left, the interpreter gone
        print(f"supervisor: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
