"""Channels, select, WaitGroup, Mutex and Sema over the ``gs_chan_*``/``gs_select``/
``gs_waitgroup_*``/``gs_mutex_*``/``gs_sema_*`` C API. Imports :mod:`gostack._ffi` and
:mod:`gostack._runtime` (for waits on plain threads) only.

Object ownership in channels: a channel has elem_size 8 and carries ``PyObject *``. A send takes a
new reference (``Py_IncRef``) that travels with the pointer; the receiver adopts it (the value is
rebuilt from the pointer and the travelling reference dropped). A send that fails (closed,
would block, timed out, select case not chosen, interrupted, rejected arguments) drops the
reference it took. Values still buffered when the channel is freed are drained and released.

Blocking calls on a plain thread (not in a goroutine): while no thread is in ``run()``, the
calling thread runs goroutines itself, a slice at a time, until the call can complete (so
``go(f); wg.wait()`` works as in Go), and raises :class:`Deadlock` if nothing can make progress;
while another thread runs them, it waits for them. Either way it waits in slices of
:data:`WAIT_SLICE_SECONDS` so that Ctrl-C (Python signal handlers) is seen between them. The
waits that have no timed C variant (``WaitGroup.wait``, ``Mutex.lock``, ``Sema.acquire``) are done
by a helper goroutine that hands the result back; interrupted, the helper undoes what it got
(unlocks, releases) once it gets it.
"""

from __future__ import annotations

import ctypes
import threading
from ctypes import c_void_p, py_object
from ctypes import addressof as _addressof
from typing import Any, Callable, Generic, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from . import _ffi, _runtime
from ._ffi import (
    GS_CASE_RECV,
    GS_CASE_SEND,
    GS_EAGAIN,
    GS_ECLOSED,
    GS_EINVAL,
    GS_ETIMEDOUT,
    INT64_MAX,
    SIZE_MAX,
    Handle,
    InvalidArgument,
    Timeout,
    c_range,
    fail,
    lib as _lib,
    seconds_to_ns,
)

T = TypeVar("T")

WAIT_SLICE_SECONDS = 0.05
_SLICE_NS = int(WAIT_SLICE_SECONDS * 1e9)

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [py_object]
_incref.restype = None
_decref = ctypes.pythonapi.Py_DecRef
_decref.argtypes = [py_object]
_decref.restype = None


class _Closed:
    def __repr__(self) -> str:
        return "gostack.CLOSED"


#: The value ``select`` returns for a receive case whose channel is closed and drained.
CLOSED: Any = _Closed()


def _own(obj: Any) -> int:
    """A new reference to ``obj``, as the pointer a channel carries."""
    _incref(obj)
    return id(obj)


def _adopt(addr: Optional[int]) -> Any:
    """The object behind a received pointer; drops the reference that travelled with it."""
    obj = ctypes.cast(c_void_p(addr), py_object).value
    _decref(obj)
    return obj


def _in_goroutine() -> bool:
    return _lib.f_self() != 0


_modules = _runtime._modules


def _switchable(what: str) -> bool:
    """In a goroutine (its blocking calls may switch)? Refuses inside a non-main greenlet."""
    if _lib.f_self() == 0:
        return False
    if "greenlet" in _modules:
        _runtime._check_greenlet(what)
    return True


def _wait_outside(attempt: Callable[[int], bool], what: str, timeout_ns: Optional[int] = None) -> bool:
    """Waits on a plain thread until ``attempt(wait_ns)`` succeeds (``attempt(0)`` must not
    block; ``attempt(n)`` may block up to n ns). Returns False once ``timeout_ns`` passed. Runs
    goroutines meanwhile while no thread is in run() (see the module doc)."""
    import time as _time

    _runtime._note_participant()
    deadline = None if timeout_ns is None else _time.monotonic_ns() + timeout_ns

    def left() -> int:
        if deadline is None:
            return _SLICE_NS
        return max(0, min(_SLICE_NS, deadline - _time.monotonic_ns()))

    # Python signal handlers run between bytecodes: one that raised between a successful C call
    # and the bookkeeping after it would lose a value (or a reference). While an attempt is in
    # flight they are deferred (main thread) and delivered at the top of the loop.
    with _runtime._deferred_signals():
        while True:
            _runtime._deliver_signals()
            if _runtime._critical(attempt, 0):
                return True
            if deadline is not None and _time.monotonic_ns() >= deadline:
                return False
            if not _runtime.someone_runs():
                me = _runtime._get_ident()
                _runtime._runners[me] = _runtime._runners.get(me, 0) + 1
                try:
                    rc = _runtime._run_slice(what, lambda: _runtime._critical(attempt, 0))
                except _ffi.Deadlock:
                    if deadline is None:
                        raise
                    rc = 0  # a timed wait ends by itself: wait out the timeout below
                finally:
                    n = _runtime._runners.pop(me, 1) - 1
                    if n:
                        _runtime._runners[me] = n
                if rc == _runtime.RESCUED:
                    return True
                if rc == 1:
                    continue
                if _runtime._critical(attempt, 0):
                    return True
                # No goroutine can help: only another thread, or the timeout.
                if deadline is None and not _runtime._outside_may_wake():
                    raise _runtime._deadlock(what)
            with _runtime.blocked_outside():
                if _runtime._critical(attempt, left()):
                    return True


class Chan(Handle, Generic[T]):
    """A Go channel carrying any Python object. ``capacity`` 0 = unbuffered (rendezvous).

    A reference, as in Go: ``copy``/``deepcopy`` return the same channel; pickling raises
    ``TypeError``."""

    __slots__ = ()
    _kind = "chan"
    _COPY = "share"

    def __init__(self, capacity: int = 0) -> None:
        if capacity < 0:
            raise InvalidArgument("Chan: negative capacity", GS_EINVAL)
        cap = c_range(capacity, 0, SIZE_MAX, "Chan capacity")
        super().__init__(_lib.gs_chan_new(8, cap))

    def send(self, value: T) -> None:
        """Blocks until a receiver takes ``value`` (or buffer space). ``ChannelClosed`` if closed."""
        h = self._handle()
        in_g = _switchable("Chan.send")
        buf = c_void_p(_own(value))
        if in_g:
            rc = _lib.f_chan_send(h, _addressof(buf))
        else:
            sent = [False]
            try:
                rc = _send_outside(h, buf, sent)
            except BaseException:  # interrupted (Ctrl-C, Deadlock): the value stays ours
                if not sent[0]:
                    _decref(value)
                raise
        if rc:
            _decref(value)
            fail(rc, "Chan.send")

    def recv(self) -> T:
        """Blocks until a value arrives. ``ChannelClosed`` once closed and drained."""
        h = self._handle()
        buf = c_void_p()
        if _switchable("Chan.recv"):
            rc = _lib.f_chan_recv(h, _addressof(buf))
        else:
            status = [0]

            def attempt(ns: int) -> bool:
                rc = _lib.f_chan_recv_timeout(h, _addressof(buf), ns) if ns else _lib.f_chan_try_recv(h, _addressof(buf))
                if rc in (GS_ETIMEDOUT, GS_EAGAIN):
                    return False
                status[0] = rc
                return True

            _wait_outside(attempt, "Chan.recv")
            rc = status[0]
        if rc:
            fail(rc, "Chan.recv")
        return _adopt(buf.value)

    def try_send(self, value: T) -> bool:
        """Sends without blocking; False when it would block. ``ChannelClosed`` if closed."""
        h = self._handle()
        _runtime._participants[_runtime._get_ident()] = True
        buf = c_void_p(_own(value))
        rc = _lib.f_chan_try_send(h, _addressof(buf))
        if rc == 0:
            return True
        _decref(value)
        if rc == GS_EAGAIN:
            return False
        fail(rc, "Chan.try_send")
        return False

    def try_recv(self) -> Tuple[bool, Optional[T]]:
        """``(True, value)``, or ``(False, None)`` when it would block. ``ChannelClosed`` once drained."""
        h = self._handle()
        _runtime._participants[_runtime._get_ident()] = True
        buf = c_void_p()
        rc = _lib.f_chan_try_recv(h, _addressof(buf))
        if rc == 0:
            return True, _adopt(buf.value)
        if rc == GS_EAGAIN:
            return False, None
        fail(rc, "Chan.try_recv")
        return False, None

    def close(self) -> None:
        """Go's ``close(ch)``: no more sends; receivers drain then get ``ChannelClosed``."""
        _runtime._participants[_runtime._get_ident()] = True
        self._call(_lib.gs_chan_close, "close")

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.recv()
            except _ffi.ChannelClosed:
                return

    def __len__(self) -> int:
        return self._call(_lib.gs_chan_len, "len")

    @property
    def capacity(self) -> int:
        return self._call(_lib.gs_chan_cap, "capacity")

    def __enter__(self) -> "Chan[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        """Closes the channel (Go's ``defer close(ch)``) if it is not closed yet."""
        if self._h is not None:
            try:
                self.close()
            except _ffi.ChannelClosed:
                pass

    def _release(self, h: int) -> int:
        # Buffered values hold references: release them before the buffer goes.
        buf = c_void_p()
        while _lib.f_chan_try_recv(h, _addressof(buf)) == 0:
            _adopt(buf.value)
        return _lib.gs_chan_free(h)


def _send_outside(h: int, buf: c_void_p, sent: List[bool]) -> int:
    """A send from a plain thread; ``sent[0]`` becomes True once the value (and its reference)
    went into the channel."""
    status = [0]

    def attempt(ns: int) -> bool:
        if ns == 0:
            rc = _lib.f_chan_try_send(h, _addressof(buf))
            if rc == GS_EAGAIN:
                return False
        else:
            rc = _select_once([(h, GS_CASE_SEND, buf)], ns)
            if rc == GS_ETIMEDOUT:
                return False
        status[0] = rc
        sent[0] = rc == 0
        return True

    _wait_outside(attempt, "Chan.send")
    return status[0]


def _case_array(cases: Sequence[Tuple[Optional[int], int, c_void_p]]) -> Any:
    arr = (_ffi.gs_case * max(1, len(cases)))()
    for i, (h, d, buf) in enumerate(cases):
        arr[i].chan = h
        arr[i].dir = d
        arr[i].elem = ctypes.addressof(buf)
    return arr


def _select_once(cases: Sequence[Tuple[Optional[int], int, c_void_p]], timeout_ns: int) -> int:
    """One gs_select: the chosen index (or the chosen case's error status), or a GS_E* code."""
    arr = _case_array(cases)
    rc = _lib.f_select(_addressof(arr), len(cases), timeout_ns)
    if rc >= 0 and arr[rc].status != 0:
        return int(arr[rc].status)  # e.g. a send case that fired on a closed channel
    return rc


SelectCase = Union["Chan[Any]", Tuple["Chan[Any]", Any]]


def select(cases: Sequence[SelectCase], timeout: Optional[float] = None, default: bool = False) -> Tuple[int, Any]:
    """Go's ``select``. A case is a ``Chan`` (receive) or ``(Chan, value)`` (send).

    Returns ``(index, value)``: the received value (``CLOSED`` for a closed, drained channel) or
    None for a send. With ``default=True`` returns ``(-1, None)`` when no case is ready; with a
    ``timeout`` (seconds; clamped to ~292 years) raises ``Timeout`` when none became ready in
    time. ``select([])`` blocks forever, as Go's ``select {}`` (the deadlock detector speaks if
    nothing else can run). A send case to a closed channel raises ``ChannelClosed``.
    """
    # Check every case before taking any reference: a rejected call leaks nothing.
    parsed: List[Tuple[int, int, Any]] = []
    for c in cases:
        if isinstance(c, Chan):
            parsed.append((c._handle(), GS_CASE_RECV, None))
        elif isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], Chan):
            parsed.append((c[0]._handle(), GS_CASE_SEND, c[1]))
        else:
            raise TypeError(f"select: a case is a Chan or a (Chan, value) pair, not {c!r}")
    timeout_ns = None if timeout is None else max(1, seconds_to_ns(timeout, "select"))
    if not parsed:
        # Go's `select {}`: a receive from a channel nobody else knows. (Not a nil-channel case:
        # the C select answers GS_EDEADLOCK at once when every case is nil, while other
        # goroutines may still run.)
        never: Chan[Any] = Chan()
        parsed.append((never._handle(), GS_CASE_RECV, None))
    n = len(parsed)
    arr = (_ffi.gs_case * n)()
    bufs: List[c_void_p] = []
    rc: Optional[int] = None
    try:
        for i, (h, d, v) in enumerate(parsed):
            arr[i].chan = h
            arr[i].dir = d
            buf = c_void_p(_own(v)) if d == GS_CASE_SEND else c_void_p()
            bufs.append(buf)
            arr[i].elem = ctypes.addressof(buf)
        rc = _select_call(arr, n, timeout_ns, default)
    finally:
        # Every reference taken for a send case is dropped, except the one that travelled with
        # the chosen send's value (interrupted or rejected: all of them).
        for i, buf in enumerate(bufs):
            if parsed[i][1] == GS_CASE_SEND and not (i == rc and arr[i].status == 0):
                _decref(parsed[i][2])
    if rc >= 0:
        if parsed[rc][1] == GS_CASE_SEND:
            if arr[rc].status == GS_ECLOSED:
                # Go panics on a send to a closed channel; we raise, and the value stays ours.
                fail(GS_ECLOSED, "select (send case)")
            return rc, None
        if arr[rc].status == GS_ECLOSED:
            return rc, CLOSED
        return rc, _adopt(bufs[rc].value)
    if rc == GS_EAGAIN and default:
        return -1, None
    if rc == GS_ETIMEDOUT:
        raise Timeout(f"select: no case ready within {timeout} s", GS_ETIMEDOUT)
    fail(rc, "select")
    return -1, None


def _select_call(arr: Any, n: int, timeout_ns: Optional[int], default: bool) -> int:
    if default:
        return _lib.f_select(_addressof(arr), n, 0)
    if _switchable("select"):
        return _lib.f_select(_addressof(arr), n, -1 if timeout_ns is None else timeout_ns)
    out = [0]

    def attempt(ns: int) -> bool:
        rc = _lib.f_select(_addressof(arr), n, ns)
        if rc in (GS_ETIMEDOUT, GS_EAGAIN):
            return False
        out[0] = rc
        return True

    if not _wait_outside(attempt, "select", timeout_ns):
        return GS_ETIMEDOUT
    return out[0]


# ---- lock-like handles --------------------------------------------------------------------------


def _wait_by_helper(what: str, op: Callable[[], int], undo: Optional[Callable[[], Any]]) -> int:
    """Runs the blocking ``op()`` in a helper goroutine for a plain thread, which waits for it
    (see the module doc); returns op's status. Interrupted, the helper undoes (``undo()``) what
    op got once it gets it."""
    note: Chan[int] = Chan(1)
    state: List[Any] = [False, None]  # cancelled, status
    lock = threading.Lock()

    def helper() -> None:
        rc = op()
        with lock:
            if state[0]:
                if rc == 0 and undo is not None:
                    undo()
                return
            state[1] = rc
        note.try_send(rc)

    _runtime.go(helper)
    nh = note._handle()
    buf = c_void_p()

    def attempt(ns: int) -> bool:
        rc = _lib.f_chan_recv_timeout(nh, _addressof(buf), ns) if ns else _lib.f_chan_try_recv(nh, _addressof(buf))
        if rc in (GS_ETIMEDOUT, GS_EAGAIN):
            return False
        _adopt(buf.value)
        return True

    try:
        _wait_outside(attempt, what)
    except BaseException:
        with lock:
            state[0] = True
            if state[1] == 0 and undo is not None:
                undo()
        raise
    return state[1]


class WaitGroup(Handle):
    """Go's ``sync.WaitGroup``. Not copyable (like ``threading.Lock``), not picklable."""

    __slots__ = ()
    _kind = "waitgroup"

    def __init__(self) -> None:
        super().__init__(_lib.gs_waitgroup_new())

    def add(self, delta: int = 1) -> None:
        _runtime._participants[_runtime._get_ident()] = True
        self._call(_lib.gs_waitgroup_add, "add", c_range(delta, -INT64_MAX - 1, INT64_MAX, "WaitGroup.add"))

    def done(self) -> None:
        _runtime._participants[_runtime._get_ident()] = True
        self._call(_lib.gs_waitgroup_done, "done")

    def wait(self) -> None:
        """Blocks until the counter is 0 (on a plain thread: see the module doc)."""
        h = self._handle()
        if _switchable("WaitGroup.wait"):
            self._call(_lib.f_waitgroup_wait, "wait")
            return
        rc = _wait_by_helper("WaitGroup.wait", lambda: _lib.f_waitgroup_wait(h), None)
        if rc:
            fail(rc, "WaitGroup.wait")


def _take(obj: Handle, what: str, block: Any, try_: Any, give_back: Any) -> None:
    """Mutex.lock and Sema.acquire: parks in a goroutine; on a plain thread, tries first, then
    waits for the thread in ``run()`` (``give_back`` undoes a take that came too late)."""
    h = obj._handle()
    name = f"{type(obj).__name__}.{what}"
    if _switchable(name):
        obj._call(block, what)
        return
    if try_(h) == 0:
        return
    rc = _wait_by_helper(name, lambda: block(h), lambda: give_back(h))
    if rc:
        fail(rc, name)


def _try_take(obj: Handle, what: str, try_: Any) -> bool:
    """Mutex.try_lock and Sema.try_acquire: False when it would block."""
    rc = try_(obj._handle())
    if rc == GS_EAGAIN:
        return False
    if rc:
        fail(rc, f"{type(obj).__name__}.{what}")
    return True


class Mutex(Handle):
    """Go's ``sync.Mutex`` (parks the goroutine, not the thread). Usable with ``with``. Not
    copyable, not picklable. As in Go, not tied to an owner: any goroutine or thread may unlock."""

    __slots__ = ()
    _kind = "mutex"

    def __init__(self) -> None:
        super().__init__(_lib.gs_mutex_new())

    def lock(self) -> None:
        _take(self, "lock", _lib.f_mutex_lock, _lib.gs_mutex_trylock, _lib.gs_mutex_unlock)

    def unlock(self) -> None:
        _runtime._participants[_runtime._get_ident()] = True
        self._call(_lib.gs_mutex_unlock, "unlock")

    def try_lock(self) -> bool:
        return _try_take(self, "try_lock", _lib.gs_mutex_trylock)

    def __enter__(self) -> "Mutex":
        self.lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()


class Sema(Handle):
    """A counting semaphore (``gs_sema_*``; Go's ``x/sync/semaphore`` with weight 1): ``acquire``
    parks while no unit is left, ``release`` gives one back. Usable with ``with``. Not copyable,
    not picklable."""

    __slots__ = ()
    _kind = "sema"

    def __init__(self, initial: int = 0) -> None:
        if initial < 0:
            raise InvalidArgument("Sema: negative initial count", GS_EINVAL)
        super().__init__(_lib.gs_sema_new(c_range(initial, 0, INT64_MAX, "Sema initial count")))

    def acquire(self) -> None:
        _take(self, "acquire", _lib.f_sema_acquire, _lib.gs_sema_try_acquire, _lib.gs_sema_release)

    def try_acquire(self) -> bool:
        return _try_take(self, "try_acquire", _lib.gs_sema_try_acquire)

    def release(self) -> None:
        _runtime._participants[_runtime._get_ident()] = True
        self._call(_lib.gs_sema_release, "release")

    def __enter__(self) -> "Sema":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
