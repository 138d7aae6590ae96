"""Channels, select, WaitGroup and Mutex over the ``gs_chan_*``/``gs_select``/``gs_waitgroup_*``/
``gs_mutex_*`` C API (shared/API.md). Importable without those symbols: using a class then raises
:class:`gostack.Unavailable`.

Object ownership in channels: a channel has elem_size 8 and carries ``PyObject *``. A send takes a
new reference (``Py_IncRef``) that travels with the pointer; the receiver adopts it (the value is
rebuilt from the pointer and the travelling reference dropped). A send that fails (closed,
would block, timed out, select case not chosen) drops the reference it took. Values still buffered
when the channel is freed are drained and released.

Blocking calls made outside a goroutine (a plain thread waiting for results) wait in slices of
:data:`WAIT_SLICE_SECONDS` so that Ctrl-C (Python signal handlers) is seen between them.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_void_p, py_object
from typing import Any, Generic, Iterator, Optional, Sequence, Tuple, TypeVar, Union

from . import _errors as E
from . import _lib, _need, _raise

T = TypeVar("T")

#: ``gs_case.dir`` values. MUST match include/gostack.h of the channels branch (not merged yet).
GS_CASE_SEND = 1
GS_CASE_RECV = 2

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
    return _lib.gs_self() != 0


class Chan(Generic[T]):
    """A Go channel carrying any Python object. ``capacity`` 0 = unbuffered (rendezvous)."""

    def __init__(self, capacity: int = 0) -> None:
        new = _need("gs_chan_new")
        if capacity < 0:
            raise E.InvalidArgument("Chan: negative capacity", E.GS_EINVAL)
        h = new(8, capacity)
        if not h:
            raise E.OutOfMemory("Chan: gs_chan_new failed", E.GS_ENOMEM)
        self._h: Optional[int] = h

    def _handle(self) -> int:
        if self._h is None:
            raise ValueError("operation on a freed gostack.Chan")
        return self._h

    def send(self, value: T) -> None:
        """Blocks until a receiver takes ``value`` (or buffer space). ``ChannelClosed`` if closed."""
        h = self._handle()
        buf = c_void_p(_own(value))
        if _in_goroutine():
            rc = _lib.gs_chan_send(h, byref(buf))
        else:
            rc = _select_outside([(h, GS_CASE_SEND, buf)], None)  # 0 (the index) on success
        if rc:
            _decref(value)
            _raise(rc, "Chan.send")

    def recv(self) -> T:
        """Blocks until a value arrives. ``ChannelClosed`` once closed and drained."""
        h = self._handle()
        buf = c_void_p()
        if _in_goroutine():
            rc = _lib.gs_chan_recv(h, byref(buf))
        else:
            recv_timeout = _need("gs_chan_recv_timeout")
            while True:
                rc = recv_timeout(h, byref(buf), _SLICE_NS)
                if rc != E.GS_ETIMEDOUT:
                    break
        if rc:
            _raise(rc, "Chan.recv")
        return _adopt(buf.value)

    def try_send(self, value: T) -> bool:
        """Sends without blocking; False when it would block. ``ChannelClosed`` if closed."""
        buf = c_void_p(_own(value))
        rc = _need("gs_chan_try_send")(self._handle(), byref(buf))
        if rc == 0:
            return True
        _decref(value)
        if rc == E.GS_EAGAIN:
            return False
        _raise(rc, "Chan.try_send")
        return False

    def try_recv(self) -> Tuple[bool, Optional[T]]:
        """``(True, value)``, or ``(False, None)`` when it would block. ``ChannelClosed`` once drained."""
        buf = c_void_p()
        rc = _need("gs_chan_try_recv")(self._handle(), byref(buf))
        if rc == 0:
            return True, _adopt(buf.value)
        if rc == E.GS_EAGAIN:
            return False, None
        _raise(rc, "Chan.try_recv")
        return False, None

    def close(self) -> None:
        """Go's ``close(ch)``: no more sends; receivers drain then get ``ChannelClosed``."""
        rc = _need("gs_chan_close")(self._handle())
        if rc:
            _raise(rc, "Chan.close")

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.recv()
            except E.ChannelClosed:
                return

    def __len__(self) -> int:
        return int(_need("gs_chan_len")(self._handle()))

    @property
    def capacity(self) -> int:
        return int(_need("gs_chan_cap")(self._handle()))

    def __enter__(self) -> "Chan[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        """Closes the channel (Go's ``defer close(ch)``) if it is not closed yet."""
        if self._h is not None:
            try:
                self.close()
            except E.ChannelClosed:
                pass

    def free(self) -> None:
        """Releases the channel: buffered values are released; ``Busy`` while goroutines wait on it."""
        if self._h is None:
            return
        try:
            while self.try_recv()[0]:
                pass
        except E.ChannelClosed:
            pass
        rc = _need("gs_chan_free")(self._h)
        if rc:
            _raise(rc, "Chan.free")
        self._h = None

    def __del__(self) -> None:
        # Best effort only: call free() (or use the channel until closed) for deterministic release.
        try:
            if getattr(self, "_h", None) is not None:
                self.free()
        except Exception:
            pass


def _select_outside(cases: Sequence[Tuple[int, int, c_void_p]], timeout_ns: Optional[int]) -> int:
    """gs_select from a plain thread, in slices (Ctrl-C). Returns the index or a GS_E* code."""
    sel = _need("gs_select")
    arr = (_loader_case() * len(cases))()
    for i, (h, d, buf) in enumerate(cases):
        arr[i].chan = h
        arr[i].dir = d
        arr[i].elem = ctypes.addressof(buf)
    remaining = timeout_ns
    while True:
        t = _SLICE_NS if remaining is None else min(_SLICE_NS, remaining)
        rc = sel(arr, len(cases), t)
        if rc >= 0 and arr[rc].status != 0:
            return int(arr[rc].status)  # e.g. a send case that fired on a closed channel
        if rc != E.GS_ETIMEDOUT:
            return rc
        if remaining is not None:
            remaining -= t
            if remaining <= 0:
                return rc


def _loader_case() -> Any:
    from ._loader import gs_case

    return gs_case


SelectCase = Union["Chan[Any]", Tuple["Chan[Any]", Any]]


def select(cases: Sequence[SelectCase], timeout: Optional[float] = None, default: bool = False) -> Tuple[int, Any]:
    """Go's ``select``. A case is a ``Chan`` (receive) or ``(Chan, value)`` (send).

    Returns ``(index, value)``: the received value (``CLOSED`` for a closed, drained channel) or
    None for a send. With ``default=True`` returns ``(-1, None)`` when no case is ready; with a
    ``timeout`` (seconds) raises ``Timeout`` when none became ready in time.
    """
    sel = _need("gs_select")
    case_t = _loader_case()
    n = len(cases)
    arr = (case_t * n)()
    bufs = []
    sends = []
    for i, c in enumerate(cases):
        if isinstance(c, Chan):
            buf = c_void_p()
            arr[i].chan = c._handle()
            arr[i].dir = GS_CASE_RECV
            sends.append(None)
        else:
            ch, v = c
            arr[i].chan = ch._handle()
            arr[i].dir = GS_CASE_SEND
            buf = c_void_p(_own(v))
            sends.append(v)
        arr[i].elem = ctypes.addressof(buf)
        bufs.append(buf)
    if default:
        rc = sel(arr, n, 0)
    elif _in_goroutine():
        rc = sel(arr, n, -1 if timeout is None else max(1, int(timeout * 1e9)))
    else:
        rc = _select_outside_arr(sel, arr, n, None if timeout is None else max(1, int(timeout * 1e9)))
    for i, v in enumerate(sends):
        if v is not None and i != rc:
            _decref(v)
    if rc >= 0:
        if sends[rc] is not None or isinstance(cases[rc], tuple):
            if arr[rc].status == E.GS_ECLOSED:
                # Go panics on a send to a closed channel; we raise, and the value stays ours.
                _decref(sends[rc])
                _raise(E.GS_ECLOSED, "select (send case)")
            return rc, None
        if arr[rc].status == E.GS_ECLOSED:
            return rc, CLOSED
        return rc, _adopt(bufs[rc].value)
    if rc == E.GS_EAGAIN and default:
        return -1, None
    _raise(rc, "select")
    return -1, None


def _select_outside_arr(sel: Any, arr: Any, n: int, timeout_ns: Optional[int]) -> int:
    remaining = timeout_ns
    while True:
        t = _SLICE_NS if remaining is None else min(_SLICE_NS, remaining)
        rc = sel(arr, n, t)
        if rc != E.GS_ETIMEDOUT:
            return rc
        if remaining is not None:
            remaining -= t
            if remaining <= 0:
                return rc


class _Handle:
    """A runtime object behind a handle: ``gs_<_kind>_new`` makes it, ``gs_<_kind>_free`` frees it."""

    _kind = ""

    def __init__(self) -> None:
        name = f"gs_{self._kind}_new"
        h = _need(name)()
        if not h:
            raise E.OutOfMemory(f"{type(self).__name__}: {name} failed", E.GS_ENOMEM)
        self._h: Optional[int] = h

    def _call(self, fn: Any, what: str, *args: Any) -> None:
        """Calls ``fn(handle, *args)``; a non-zero status becomes the matching ``gostack.Error``."""
        rc = fn(self._h, *args)
        if rc:
            _raise(rc, f"{type(self).__name__}.{what}")

    def free(self) -> None:
        if self._h is not None:
            self._call(getattr(_lib, f"gs_{self._kind}_free"), "free")
            self._h = None


class WaitGroup(_Handle):
    """Go's ``sync.WaitGroup``."""

    _kind = "waitgroup"

    def add(self, delta: int = 1) -> None:
        self._call(_lib.gs_waitgroup_add, "add", delta)

    def done(self) -> None:
        self._call(_lib.gs_waitgroup_done, "done")

    def wait(self) -> None:
        self._call(_lib.gs_waitgroup_wait, "wait")


class Mutex(_Handle):
    """Go's ``sync.Mutex`` (parks the goroutine, not the thread). Usable with ``with``."""

    _kind = "mutex"

    def lock(self) -> None:
        self._call(_lib.gs_mutex_lock, "lock")

    def unlock(self) -> None:
        self._call(_lib.gs_mutex_unlock, "unlock")

    def try_lock(self) -> bool:
        rc = _lib.gs_mutex_trylock(self._h)
        if rc == E.GS_EAGAIN:
            return False
        if rc:
            _raise(rc, "Mutex.try_lock")
        return True

    def __enter__(self) -> "Mutex":
        self.lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()
