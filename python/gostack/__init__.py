"""Go-style goroutines for Python, on libgostack.so (through ctypes).

>>> import gostack
>>> def worker(n):
...     for i in range(3):
...         print(n, i)
...         gostack.yield_()
>>> for n in range(2):
...     gostack.go(worker, n)
>>> gostack.run()

Each goroutine runs the Python callable under a ``PyThreadState`` of its own, on a C stack of its
own (8 MiB reserved, committed as touched). One goroutine holds the GIL at a time; switches happen
only at ``yield_()``, ``sleep()``, and blocking channel/mutex/waitgroup operations.

What users notice: ``threading.local`` and ``sys.exc_info()`` are per goroutine (they live in the
thread state); ``threading.current_thread()`` is the OS thread that runs the goroutine.

Errors: C status codes become :class:`Error` subclasses. An exception escaping a goroutine is
reported through :data:`excepthook` (like an uncaught exception in a thread) and the other
goroutines keep running; ``run()`` raises them all, as a ``BaseExceptionGroup``, once every
goroutine has ended. ``KeyboardInterrupt``/``SystemExit`` raised in a goroutine stop ``run()``
at once (it re-raises them; the remaining goroutines stay queued for the next ``run()``).
"""

from __future__ import annotations

import os as _os
import ctypes
import functools
import sys
import threading
import time
import traceback
from typing import Any, Callable, List, NamedTuple, Optional, TypeVar

from . import _loader
from ._errors import (
    Busy,
    ChannelClosed,
    Deadlock,
    Error,
    InternalError,
    InvalidArgument,
    NotInGoroutine,
    OutOfMemory,
    Timeout,
    Unavailable,
    WouldBlock,
    WrongState,
    error_for,
)

__version__ = "0.1.0"

__all__ = [
    "go", "run", "yield_", "gosched", "sleep", "systemstack", "stats", "Stats", "goid", "set_maxprocs",
    "maxprocs", "excepthook", "GoroutineExceptArgs", "Chan", "select", "CLOSED", "WaitGroup", "Mutex",
    "Error", "InvalidArgument", "OutOfMemory", "NotInGoroutine", "ChannelClosed", "Deadlock", "Timeout",
    "WouldBlock", "Busy", "WrongState", "InternalError", "Unavailable", "library_path",
]

_lib = _loader.lib()
#: Path of the libgostack.so in use.
library_path = str(_lib.path)

T = TypeVar("T")

#: Length of one ``run()`` time slice: the longest Ctrl-C waits when no goroutine runs Python.
RUN_SLICE_SECONDS = 0.02


def _strerror(code: int) -> str:
    return (_lib.gs_strerror(code) or b"?").decode()


def _raise(code: int, what: str) -> None:
    raise error_for(code, what, _strerror(code))


# ---- goroutines ---------------------------------------------------------------------------------


class GoroutineExceptArgs(NamedTuple):
    """What :data:`excepthook` receives (like ``threading.ExceptHookArgs``)."""

    exc_type: type
    exc_value: BaseException
    exc_traceback: Any
    goroutine: int


def _default_excepthook(args: GoroutineExceptArgs) -> None:
    stderr = sys.stderr
    if stderr is None:
        return
    print(f"Exception in goroutine {args.goroutine}:", file=stderr)
    traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=stderr)
    stderr.flush()


#: Called with a :class:`GoroutineExceptArgs` for every exception escaping a goroutine
#: (``KeyboardInterrupt`` and ``SystemExit`` excepted: ``run()`` re-raises those). Replaceable.
excepthook: Callable[[GoroutineExceptArgs], None] = _default_excepthook

_failures: List[BaseException] = []
_stop: List[BaseException] = []
_failures_lock = threading.Lock()


def _report(e: BaseException) -> None:
    gid = _lib.gs_self()
    with _failures_lock:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            _stop.append(e)
            return
        _failures.append(e)
    try:
        excepthook(GoroutineExceptArgs(type(e), e, e.__traceback__, gid))
    except BaseException as hook_error:  # like threading: a failing hook is reported, not fatal
        print("Exception in gostack.excepthook:", file=sys.stderr)
        traceback.print_exception(type(hook_error), hook_error, hook_error.__traceback__, file=sys.stderr)


def _goroutine(fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
    """What every goroutine runs: ``fn(*args, **kwargs)``, its escaping exception reported."""
    if _stop:  # run() is being interrupted: goroutines not started yet stay unstarted
        go(fn, *args, **kwargs)
        return
    try:
        fn(*args, **kwargs)
    except BaseException as e:
        _report(e)


def go(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Starts a goroutine running ``fn(*args, **kwargs)``; returns its id.

    Callable from any Python thread and from goroutines. Goroutines run when a thread calls
    :func:`run`. An exception escaping ``fn`` is reported through :data:`excepthook` and collected
    for ``run()``.
    """
    # A functools.partial (C) of one module-level function, not a closure: no function object
    # and cells per goroutine, fewer GC-tracked allocations (spawn is measured per goroutine).
    gid = _spawn(_partial(_goroutine, fn, args, kwargs), 0)
    if gid < 0:
        if gid == -9:
            raise WrongState(
                "go: cannot start a Python goroutine (CPython API or its GIL-state slot not found; "
                "see src/embed/cpython.rs for the supported versions)", gid)
        _raise(gid, "go")
    return gid


_spawn = _lib.gs_py_spawn
_partial = functools.partial


def run() -> None:
    """Runs goroutines on the calling thread until every goroutine has ended.

    Raises ``BaseExceptionGroup`` of the exceptions that escaped goroutines (after all ended), or
    re-raises at once a ``KeyboardInterrupt``/``SystemExit`` raised in one. Ctrl-C interrupts it
    within about :data:`RUN_SLICE_SECONDS` (unless a goroutine computes without switching).
    ``WrongState`` from inside a goroutine.

    Raises :class:`Deadlock` when every goroutine left is blocked for good (on channels, mutexes,
    wait groups nobody else can reach; no ``sleep`` pending; no other thread of the process able
    to wake one). The blocked goroutines stay parked: the program may go on, and a later ``run()``
    resumes them if something (a ``try_send``/``close`` from outside, say) woke them.
    """
    slice_ns = int(RUN_SLICE_SECONDS * 1e9)
    run_slice = _lib.gs_py_run
    while True:
        rc = run_slice(slice_ns)
        if _stop:
            with _failures_lock:
                e = _stop.pop(0)
            raise e
        if rc == 0:
            break
        if rc < 0:
            if rc == Deadlock.code:
                raise Deadlock("run: all goroutines are asleep - deadlock!", rc)
            _raise(rc, "run")
    with _failures_lock:
        failed = list(_failures)
        _failures.clear()
    if failed:
        msg = f"{len(failed)} goroutine(s) raised"
        if _BEG is not None:  # Python >= 3.11
            raise _BEG(msg, failed)
        err = Error(msg)
        err.exceptions = failed  # type: ignore[attr-defined]
        raise err from failed[0]


_BEG: Any = getattr(__import__("builtins"), "BaseExceptionGroup", None)


def yield_(_y: Any = _lib.gs_yield) -> None:
    """Lets the other goroutines run (Go's ``runtime.Gosched``). ``NotInGoroutine`` outside one."""
    rc = _y()
    if rc:
        _raise(rc, "yield_")


gosched = yield_


def sleep(seconds: float) -> None:
    """Parks the calling goroutine for at least ``seconds``; outside goroutines, ``time.sleep``."""
    if seconds < 0:
        raise InvalidArgument("sleep: negative duration", -1)
    if _lib.gs_self() == 0:
        time.sleep(seconds)
        return
    rc = _lib.gs_sleep(int(seconds * 1e9))
    if rc:
        _raise(rc, "sleep")


def goid() -> int:
    """The id of the calling goroutine, 0 outside goroutines."""
    return _lib.gs_self()


def systemstack(fn: Callable[[], T]) -> T:
    """Calls ``fn()`` on the OS thread's own stack (deep recursion); returns its result.

    Inside ``fn``, switching calls (``yield_``, blocking operations) raise ``WrongState``.
    """
    out: List[Any] = []

    def cb(_arg: Any) -> None:
        try:
            out.append((True, fn()))
        except BaseException as e:
            out.append((False, e))

    cfn = _loader.GS_FN(cb)
    rc = _lib.gs_systemstack(cfn, None)
    if rc:
        _raise(rc, "systemstack")
    ok, value = out[0]
    if not ok:
        raise value
    return value


class Stats(NamedTuple):
    goroutines_live: int
    goroutines_total: int
    switches: int
    stack_reserved: int
    stack_committed: int
    stack_grows: int
    stack_shrinks: int
    maxprocs: int
    threads: int
    stack_moves: int
    stack_releases: int
    stack_in_use: int
    stack_pooled: int
    goroutine_records: int


def stats() -> Stats:
    """Runtime-wide counters (``gs_get_stats``)."""
    s = _loader.gs_stats()
    rc = _lib.gs_get_stats(ctypes.byref(s))
    if rc:
        _raise(rc, "stats")
    return Stats(*(getattr(s, f) for f, _ in _loader.gs_stats._fields_))


def _need(name: str) -> Any:
    fn = getattr(_lib, name)
    if fn is None:
        raise Unavailable(f"{name} is not in {library_path} (version {_lib.version}): this feature needs a "
                          "newer libgostack")
    return fn


def set_maxprocs(n: int) -> int:
    """Sets the number of Ps (OS threads running goroutines at once); returns the previous value.

    Python goroutines run one at a time under the GIL whatever this says, so ``import gostack``
    sets it to 1 unless ``GOSTACK_MAXPROCS`` is set: all goroutines then run in the thread inside
    :func:`run`, like greenlet. Raising it only helps C goroutines spawned from C code, and has a
    hazard for Python ones: a Python goroutine that yields inside a C callback that holds a lock
    (an sqlite3 user function, say) can deadlock with a Python goroutine on another thread that
    waits for that lock while holding the GIL.
    """
    rc = _need("gs_set_maxprocs")(n)
    if rc < 0:
        _raise(rc, "set_maxprocs")
    return rc


def _default_one_p() -> None:
    # See set_maxprocs: one P unless the user chose otherwise through the environment.
    if "GOSTACK_MAXPROCS" not in _os.environ and _lib.gs_set_maxprocs is not None:
        _lib.gs_set_maxprocs(1)


_default_one_p()


def maxprocs() -> int:
    """The number of Ps."""
    if _lib.gs_maxprocs is None:
        return stats().maxprocs
    return _lib.gs_maxprocs()


from ._sync import CLOSED, Chan, Mutex, WaitGroup, select  # noqa: E402
