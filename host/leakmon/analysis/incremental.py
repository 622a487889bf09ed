"""`fit_slope` over the trailing window of a live stream."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from leakmon.analysis.fit import FloatArray, SlopeFit, fit_slope


class TrailingWindow:
    """The samples of a live stream with t >= t_latest - window_s, as columns (t first).

    One preallocated (columns, capacity) buffer: a batch is written after the last sample
    and checked where it lies (committed only if it is finite and in time order); the front
    is cut by a search on t; when the end reaches the capacity the window moves back to the
    start (amortized O(1) a sample) or, if it fills half the buffer, the buffer doubles.
    add() is O(batch) with a handful of numpy calls (a gateway ingests every block of every
    channel); columns() is one slice copy. window_s None keeps everything (memory grows
    with the stream).
    """

    INITIAL_CAPACITY = 1024

    def __init__(self, window_s: float | None, n_columns: int = 2) -> None:
        if window_s is not None and not (window_s > 0.0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive finite number or None, got {window_s}")
        self.window_s = window_s
        self._cols = n_columns
        self._buf = np.empty((n_columns, self.INITIAL_CAPACITY))
        self._head = 0  # first sample in the window
        self._end = 0  # one past the last
        self.added = 0  # samples ever committed: the stream index one past the newest
        # Windows that add_rows() filled in one call and found equal share a token: their
        # time rows, positions and capacities are then the same (a node's channels), so the
        # next call checks and cuts one of them for all. add() and any later call drop it.
        self._axis: object | None = None
        # add_rows() moves windows in step into one (windows, columns, capacity) array when
        # they need room: each buffer is then row _slot of _shared, a frame is written to
        # all in one assignment and stacked() reads them in one slice. A window only ever
        # writes its own row, so one that leaves the group (add(), a frame without it) is
        # unaffected; it gets a buffer of its own when it grows.
        self._shared: FloatArray | None = None
        self._slot = 0

    def __len__(self) -> int:
        return self._end - self._head

    def _room(self, m: int) -> None:
        """Make space for m more samples after the last."""
        n, cap = self._end - self._head, self._buf.shape[1]
        if self._end + m <= cap:
            return
        if 2 * (n + m) > cap:  # grow: keep at least as much room as the window
            new = np.empty((self._cols, max(2 * (n + m), 2 * cap)))
            new[:, :n] = self._buf[:, self._head : self._end]
            self._buf, self._shared = new, None
        else:
            self._buf[:, :n] = self._buf[:, self._head : self._end]
        self._head, self._end = 0, n

    def add(self, t_s: npt.ArrayLike, *values: npt.ArrayLike) -> None:
        """Append a batch of finite samples; times must not go backwards."""
        if len(values) != self._cols - 1:
            raise ValueError(f"expected {self._cols - 1} value column(s), got {len(values)}")
        self._axis = None
        t = np.asarray(t_s, dtype=np.float64)
        shape = t.shape
        for v in values:
            if np.shape(v) != shape or t.ndim != 1:
                raise ValueError(f"t_s and the values must be 1-D of equal length, got {t.shape} and "
                                 f"{[np.shape(v) for v in values]}")  # fmt: skip
        m = shape[0]
        if m == 0:
            return
        self._room(m)
        end = self._end
        new = self._buf[:, end : end + m]  # written, not yet committed
        new[0] = t
        for i, v in enumerate(values, 1):
            new[i] = v
        # The extremes say it without a boolean array: finite bounds hold only finite samples
        # (a NaN makes both comparisons false).
        if not (float(new.max()) < math.inf and float(new.min()) > -math.inf):
            raise ValueError("samples must be finite")
        row = new[0]
        if (m > 1 and bool((row[1:] < row[:-1]).any())) or (end > self._head and row[0] < self._buf[0, end - 1]):
            raise ValueError("sample times must not decrease")
        self._commit(m)

    def _commit(self, m: int) -> None:
        """The m samples written after the last are in: the front is cut to the window."""
        end = self._end
        self._end = end + m
        self.added += m
        if self.window_s is not None:  # the newest sample always stays
            times = self._buf[0]
            cutoff = float(times[end + m - 1]) - self.window_s
            if times[self._head] < cutoff:
                self._head += int(times[self._head : end + m - 1].searchsorted(cutoff, side="left"))  # (the method: no wrapper)

    @property
    def last_t_s(self) -> float:
        """The newest sample's time (-inf while empty)."""
        return float(self._buf[0, self._end - 1]) if self._end > self._head else -math.inf

    @classmethod
    def add_rows(cls, windows: Sequence[TrailingWindow], t_s: FloatArray, values: FloatArray) -> bool:
        """add(t_s, *values[:, c]) to windows[c] for each c, the checks made once: the
        channels of a node sample on one time axis, and a gateway ingests every frame of
        every node. values is (columns - 1, len(windows), m). False, with nothing added,
        when a check fails (add() each, to have its error)."""
        m = t_s.shape[0]
        if t_s.ndim != 1 or values.shape[1:] != (len(windows), m) or m == 0:
            return False
        if not (float(values.max()) < math.inf and float(values.min()) > -math.inf
                and float(t_s.max()) < math.inf and float(t_s.min()) > -math.inf):
            return False
        if m > 1 and bool((t_s[1:] < t_s[:-1]).any()):
            return False
        t0 = float(t_s[0])
        w0 = windows[0]
        token = w0._axis
        in_step = token is not None and all(w._axis is token for w in windows)
        if any(w._cols != values.shape[0] + 1 for w in windows) or (
                w0.last_t_s > t0 if in_step else any(w.last_t_s > t0 for w in windows)):
            return False
        rows = np.empty((len(windows), values.shape[0] + 1, m))  # each window's new columns
        rows[:, 0] = t_s
        rows[:, 1:] = values.swapaxes(0, 1)
        if in_step:  # equal time rows at equal positions: one room, one write, one cut for all
            shared = cls._shared_of(windows)
            if w0._end + m > w0._buf.shape[1]:
                shared = cls._room_together(windows, shared, m)
            if shared is not None:
                shared[:, :, w0._end : w0._end + m] = rows
            else:
                for w, r in zip(windows, rows):
                    w._buf[:, w._end : w._end + m] = r
            w0._commit(m)
            for w in windows:
                w._head, w._end, w.added = w0._head, w0._end, w0.added
        else:
            for w, r in zip(windows, rows):
                w._room(m)
                w._buf[:, w._end : w._end + m] = r
                w._commit(m)
            in_step = all(w._head == w0._head and w._end == w0._end and w.added == w0.added
                          and w.window_s == w0.window_s and w._buf.shape == w0._buf.shape
                          and np.array_equal(w._buf[0, w._head : w._end], w0._buf[0, w0._head : w0._end])
                          for w in windows)  # fmt: skip
        token = object() if in_step else None  # (a new one: windows left out of this call keep the old)
        for w in windows:
            w._axis = token
        return True

    @staticmethod
    def _shared_of(windows: Sequence[TrailingWindow]) -> FloatArray | None:
        """The array whose rows 0, 1, ... are these windows' buffers, in this order; None if none is."""
        shared = windows[0]._shared
        if shared is None or shared.shape[0] != len(windows):
            return None
        return shared if all(w._shared is shared and w._slot == c for c, w in enumerate(windows)) else None

    @classmethod
    def _room_together(cls, windows: Sequence[TrailingWindow], shared: FloatArray | None, m: int) -> FloatArray:
        """_room(m) of windows in step (equal positions and capacities), as one array:
        moved back in it, or into a new one (grown as _room grows), which they then share."""
        w0 = windows[0]
        head, end, cap = w0._head, w0._end, w0._buf.shape[1]
        n = end - head
        if shared is not None and 2 * (n + m) <= cap:
            shared[:, :, :n] = shared[:, :, head:end]
        else:
            grown = max(2 * (n + m), 2 * cap) if 2 * (n + m) > cap else cap
            new = np.empty((len(windows), w0._cols, grown))
            for c, w in enumerate(windows):
                new[c, :, :n] = w._buf[:, head:end]
                w._buf, w._shared, w._slot = new[c], new, c
            shared = new
        for w in windows:
            w._head, w._end = 0, n
        return shared

    @classmethod
    def stacked(cls, windows: Sequence[TrailingWindow], start: int, stop: int,
                idx: npt.NDArray[np.intp] | None = None) -> FloatArray:  # fmt: skip
        """np.stack([w.samples(start, stop)[:, idx] for w in windows], axis=1): (columns,
        windows, ...) of the stream indices start..stop-1 (all of them when idx is None),
        read only; one slice of their shared array when the windows are in step in one."""
        w0 = windows[0]
        shared = cls._shared_of(windows)
        if shared is None or w0._axis is None or not all(w._axis is w0._axis for w in windows):
            views = [w.samples(start, stop) for w in windows]
            return np.stack(views if idx is None else [v[:, idx] for v in views], axis=1)
        w0.samples(start, stop)  # (its range check: in step, it holds for all)
        lo = start + w0._end - w0.added
        part = shared[:, :, lo : lo + stop - start] if idx is None else shared[:, :, lo + idx]
        part = part.swapaxes(0, 1)
        part.flags.writeable = False
        return part

    @property
    def first_index(self) -> int:
        """The stream index (0 = the first sample ever added) of the window's first sample."""
        return self.added - (self._end - self._head)

    def samples(self, start: int, stop: int) -> FloatArray:
        """A read-only view (columns, stop - start) of stream indices start..stop-1, which
        must lie in the window; valid until the next add()."""
        if not self.first_index <= start <= stop <= self.added:
            raise IndexError(f"samples {start}..{stop} are not all in the window "
                             f"({self.first_index}..{self.added})")  # fmt: skip
        off = self._end - self.added
        view = self._buf[:, start + off : stop + off]
        view.flags.writeable = False
        return view

    def columns(self) -> tuple[FloatArray, ...]:
        """Copies of the window's columns (t, then the values)."""
        win = self._buf[:, self._head : self._end].copy()
        return tuple(win[i] for i in range(self._cols))


class IncrementalSlope:
    """`fit_slope` over a trailing time window of a live stream.

    add() is O(batch); fit() is O(window): the long-run variance needs the window's batch
    structure, and fitting the window's samples with `fit_slope` itself makes the live
    figures equal the offline ones exactly, not merely to rounding.
    """

    def __init__(self, window_s: float | None = None) -> None:
        """window_s: keep the samples with t >= t_latest - window_s; None keeps them all."""
        self._win = TrailingWindow(window_s)
        self.window_s = window_s

    def __len__(self) -> int:
        return len(self._win)

    def add(self, t_s: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Append a batch of finite samples; times must not go backwards."""
        self._win.add(t_s, y)

    def window(self) -> tuple[FloatArray, FloatArray]:
        """Copies of the window's (t, y)."""
        t, y = self._win.columns()
        return t, y

    def fit(self) -> SlopeFit[float] | None:
        """The fit of the current window; None below 3 samples or if all share one time."""
        if len(self._win) < 3:
            return None
        t, y = self.window()
        if not t[-1] > t[0]:
            return None
        return fit_slope(t, y)
