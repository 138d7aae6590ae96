"""Goroutines: ``go``, ``run``, ``yield_``, ``sleep``, stack sizes, tracing, signals, fork.

Imports only :mod:`gostack._ffi`. The rules users see are in the package docstring and the
README's Python section; the reasons are here.
"""

from __future__ import annotations

import contextvars
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, TypeVar

from . import _ffi
from ._ffi import (
    GS_EDEADLOCK,
    GS_ESTATE,
    Deadlock,
    Error,
    InvalidArgument,
    NotInGoroutine,
    WrongState,
    check,
    fail,
    lib as _lib,
    seconds_to_ns,
)

T = TypeVar("T")

#: Length of one ``run()`` time slice: the longest Ctrl-C waits when no goroutine runs Python.
RUN_SLICE_SECONDS = 0.02
_SLICE_NS = int(RUN_SLICE_SECONDS * 1e9)

#: C stack of a Python goroutine by default: the thread's shared stack of the copy kind (this
#: size, committed only as touched), or a FIXED stack of this size where the copy kind is not
#: used (GOSTACK_PY_STACK=fixed, an unrecognized CPython: src/embed/cpython.rs).
DEFAULT_STACK_SIZE = 8 << 20
#: Smallest stack accepted for a Python goroutine: an empty one touches 1.7 KiB, a typical one
#: 4-6 KiB, a ctypes call ~2.2 KiB more (shared notes/cpython.md); a suite crashed at 8 KiB.
MIN_STACK_SIZE = 32 << 10

# ---- process-wide Python-side state (reset in a fork child) -------------------------------------

_failures: List[BaseException] = []
_stop: List[BaseException] = []
_failures_lock = threading.Lock()
_stack_size = 0  # 0: DEFAULT_STACK_SIZE
#: Threads (idents) that used gostack from outside the scheduler: the only ones that may still
#: wake a goroutine for the deadlock rule (see _outside_may_wake).
_participants: Dict[int, bool] = {}
#: Threads in run() or driving the scheduler from a blocking call, and threads blocked in a
#: gostack call from outside (they wake no one while blocked).
_runners: Dict[int, int] = {}
_blocked: Dict[int, int] = {}
_get_ident = threading.get_ident


def _note_participant() -> None:
    _participants[_get_ident()] = True


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


def _report(e: BaseException) -> None:
    gid = _lib.f_self()
    with _failures_lock:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            _stop.append(e)
            # The slice of run() ends when this goroutine exits: no other goroutine starts.
            _lib.gs_py_stop()
            return
        _failures.append(e)
    try:
        _gmod().excepthook(GoroutineExceptArgs(type(e), e, e.__traceback__, gid))
    except BaseException as hook_error:  # like threading: a failing hook is reported, not fatal
        print("Exception in gostack.excepthook:", file=sys.stderr)
        traceback.print_exception(type(hook_error), hook_error, hook_error.__traceback__, file=sys.stderr)


def _gmod() -> Any:
    # excepthook is documented as replaceable on the package (gostack.excepthook = ...).
    return sys.modules.get("gostack") or sys.modules[__name__]


try:
    import _lsprof

    _Profiler: Any = _lsprof.Profiler
except ImportError:  # pragma: no cover
    _Profiler = ()


def _start_tracing(trace: Any, profile: Any) -> None:
    """Gives the goroutine's thread state the spawner's trace and profile functions."""
    if trace is not None:
        sys.settrace(trace)
    if profile is not None:
        if isinstance(profile, _Profiler):
            # cProfile (3.11: a C-level profiler per thread state): enable it on this one too.
            profile.enable()
        else:
            sys.setprofile(profile)


def _goroutine(fn: Callable[..., Any], args: Any, kwargs: Any, trace: Any, profile: Any, gen: int) -> None:
    """What every goroutine runs, in a copy of the spawner's context (entered by the library: see
    _go): ``fn(*args, **kwargs)`` with the spawner's tracing; an escaping exception reported.
    Nothing before the ``try`` can raise (Python signal handlers are deferred while goroutines
    run: see _deferred_signals).

    ``fn`` is called with a plain call for up to two positional arguments: CPython 3.11+ runs a
    Python function called so in the same C-level evaluation loop, while ``fn(*args)`` (and
    ``ctx.run(fn)``) nest another one, ~0.5 KB of C stack that every parked goroutine keeps in its
    save area (the copy stack kind, src/embed/cpython.rs)."""
    failed = False
    try:
        if trace is not None or profile is not None:
            _start_tracing(trace, profile)
        if kwargs:
            fn(*args, **kwargs)
        elif not args:
            fn()
        elif len(args) == 1:
            fn(args[0])
        elif len(args) == 2:
            fn(args[0], args[1])
        else:
            fn(*args)
    except BaseException as e:
        failed = True
        if _ffi.generation == gen:
            _report(e)
        else:
            traceback.print_exception(type(e), e, e.__traceback__)
    if _ffi.generation != gen:
        _exit_forked_goroutine(failed)


def _exit_forked_goroutine(failed: bool) -> None:
    """The child of an ``os.fork()`` made inside a goroutine reached the end of that goroutine:
    the rest of the goroutine's thread (the parent's scheduler) does not exist in the child, so
    the child ends here, as a thread's child ends when the thread's function returns."""
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass
    os._exit(1 if failed else 0)


_copy_context = contextvars.copy_context
_gettrace = sys.gettrace
_getprofile = sys.getprofile


def go(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Starts a goroutine running ``fn(*args, **kwargs)``; returns its id.

    Callable from any Python thread and from goroutines. Goroutines run when a thread calls
    :func:`run` (or waits in a blocking gostack call). The goroutine runs in a copy of the
    caller's ``contextvars`` context (as ``asyncio.create_task``), with the caller's trace and
    profile functions (``sys.settrace``/``setprofile``, else ``threading.settrace``'s), on a stack
    of :func:`stack_size` bytes. An exception escaping ``fn`` is reported through
    :data:`excepthook` and collected for ``run()``.
    """
    return _go(fn, args, kwargs, _stack_size)


def go_with(fn: Callable[..., Any], args: Any = (), kwargs: Optional[Dict[str, Any]] = None, *,
            stack_size: Optional[int] = None) -> int:
    """:func:`go` with options: ``stack_size`` in bytes (None: :func:`stack_size`'s default).

    A given ``stack_size`` is a FIXED stack of that size (by default goroutines share the
    thread's 8 MiB stack, their live part copied out when they switch). Neither kind moves
    (CPython keeps pointers into it); both are reserved, not committed: a large one costs address
    space only, until touched. Deep Python->C->Python
    recursion needs ~5 KiB per level (``sorted(key=...)``, ``json`` of nested objects, ``__repr__``
    chains); pure Python recursion needs none (3.11+) but is bounded by
    ``sys.setrecursionlimit``.
    """
    size = _stack_size if stack_size is None else _check_stack_size(stack_size)
    return _go(fn, tuple(args), dict(kwargs or {}), size)


def _go(fn: Callable[..., Any], args: Any, kwargs: Any, size: int) -> int:
    _participants[_get_ident()] = True
    trace = _gettrace() or threading._trace_hook  # type: ignore[attr-defined]
    profile = _getprofile() or threading._profile_hook  # type: ignore[attr-defined]
    # One module-level function and an argument tuple, not a closure: no function object and
    # cells per goroutine, fewer GC-tracked allocations (spawn is measured per goroutine). The
    # library enters the context and calls with the tuple itself (gs_py_spawn_call), with no
    # functools.partial or Context.run in between: fewer C frames kept per parked goroutine.
    gid = _spawn_call(_goroutine, (fn, args, kwargs or None, trace, profile, _ffi.generation), _copy_context(),
                      size)
    if gid < 0:
        if gid == GS_ESTATE:
            raise WrongState(
                "go: cannot start a Python goroutine (CPython API or its GIL-state slot not found; "
                "see src/embed/cpython.rs for the supported versions)", gid)
        fail(gid, "go")
    return gid


def _check_stack_size(size: int) -> int:
    size = int(size)
    if size == 0:
        return 0
    if size < MIN_STACK_SIZE:
        raise InvalidArgument(f"stack_size: {size} bytes is below the {MIN_STACK_SIZE} a Python goroutine needs",
                              _ffi.GS_EINVAL)
    if size > _ffi.GS_STACK_MAX:
        raise OverflowError(f"stack_size: {size} bytes is above GS_STACK_MAX ({_ffi.GS_STACK_MAX})")
    return size


def stack_size(size: Optional[int] = None) -> int:
    """Returns the stack size new goroutines get from :func:`go` (0 = the default: the thread's
    shared 8 MiB stack), and sets it to ``size`` if given (like ``threading.stack_size``): a
    FIXED stack of ``size`` bytes per goroutine; returns the previous value."""
    global _stack_size
    old = _stack_size
    if size is not None:
        _stack_size = _check_stack_size(size)
    return old


def _rebind() -> None:
    global _spawn_call, _gs_yield, _gs_self
    _spawn_call = _lib.gs_py_spawn_call
    _gs_yield = _lib.f_yield
    _gs_self = _lib.f_self


_spawn_call = _gs_yield = _gs_self = None  # type: ignore[assignment]
_rebind()


# ---- signals ------------------------------------------------------------------------------------
#
# On CPython 3.11 and 3.12 the main OS thread runs Python signal handlers in whatever thread state
# it runs, so Ctrl-C raised KeyboardInterrupt inside a goroutine (killing it: the next run() then
# reported a deadlock) or in the goroutine wrapper itself (swallowed). While goroutines run on
# the main thread, every Python-level handler is wrapped: called inside a goroutine, the wrapper
# only records the signal; run() calls the real handler between slices, outside every goroutine,
# so KeyboardInterrupt lands in run() with every goroutine intact. (3.13 runs handlers only in
# the main thread state already; the wrapper then never sees a goroutine.)

_pending_signals: List[int] = []
_wrapped: Dict[int, Any] = {}


_in_critical = [0]


#: How long a signal deferred inside a goroutine waits for run() before it is raised in the
#: goroutine that runs (one that computes without switching never gives run() a turn).
FORCE_SIGNAL_AFTER = 0.25


def _deferring_handler(signum: int, frame: Any) -> None:
    if _in_critical[0] or _gs_self() != 0:
        if signum not in _pending_signals:
            _pending_signals.append(signum)
            if not _in_critical[0]:
                t = threading.Timer(FORCE_SIGNAL_AFTER, _force_signal, (signum,))
                t.daemon = True
                t.start()
            return
        if _in_critical[0]:
            return
        # Forced (or pressed again): raise it here, in the goroutine.
        _pending_signals.remove(signum)
    _wrapped[signum](signum, frame)


def _force_signal(signum: int) -> None:
    if signum in _pending_signals and signum in _wrapped:
        import _thread

        _thread.interrupt_main(signum)


def _critical(fn: Callable[[int], bool], arg: int) -> bool:
    """``fn(arg)`` with Python signal handlers deferred (they run at the next _deliver_signals)."""
    _in_critical[0] += 1
    try:
        return fn(arg)
    finally:
        _in_critical[0] -= 1


class _deferred_signals:
    """Wraps the Python signal handlers while goroutines may run on this thread (main thread only:
    no other thread runs Python signal handlers)."""

    def __enter__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread() and not _wrapped
        if not self.active:
            return
        for sig in signal.valid_signals():
            try:
                h = signal.getsignal(sig)
            except (ValueError, OSError):
                continue
            if callable(h) and h is not _deferring_handler:
                try:
                    signal.signal(sig, _deferring_handler)
                except (ValueError, OSError, RuntimeError):
                    continue
                _wrapped[sig] = h

    def __exit__(self, *exc: Any) -> None:
        if not self.active:
            return
        for sig, h in list(_wrapped.items()):
            if signal.getsignal(sig) is _deferring_handler:
                signal.signal(sig, h)
        _wrapped.clear()


def _deliver_signals() -> None:
    """Runs the handlers of signals deferred inside goroutines (may raise KeyboardInterrupt)."""
    while _pending_signals:
        sig = _pending_signals.pop(0)
        h = _wrapped.get(sig) or signal.getsignal(sig)
        if callable(h):
            h(sig, None)


# ---- run ----------------------------------------------------------------------------------------


def _outside_may_wake() -> bool:
    """Could a thread outside the scheduler still wake a goroutine? Only threads that used gostack
    count (an idle pool worker or logging thread that never did cannot), and only while alive,
    not driving the scheduler and not blocked in a gostack call themselves; never the calling
    thread (it is about to wait)."""
    alive = sys._current_frames().keys()
    me = _get_ident()
    for ident in list(_participants):
        if ident not in alive:
            _participants.pop(ident, None)
        elif ident != me and ident not in _runners and ident not in _blocked:
            return True
    return False


def _deadlock(what: str) -> Deadlock:
    with _failures_lock:
        failed = list(_failures)
        _failures.clear()
    e = Deadlock(f"{what}: all goroutines are asleep - deadlock!", GS_EDEADLOCK)
    e.exceptions = failed
    if failed:
        e.__cause__ = _group(f"{len(failed)} goroutine(s) raised before the deadlock", failed)
    return e


def _group(msg: str, failed: List[BaseException]) -> BaseException:
    if _BEG is not None:  # Python >= 3.11
        return _BEG(msg, failed)
    err = Error(msg)
    err.exceptions = failed  # type: ignore[attr-defined]
    err.__cause__ = failed[0]
    return err


_BEG: Any = getattr(__import__("builtins"), "BaseExceptionGroup", None)


def _check_stop() -> None:
    if _stop:
        with _failures_lock:
            e = _stop.pop(0)
        raise e


#: _run_slice's answer when every goroutine is asleep but ``rescue()`` made progress.
RESCUED = 2


def _run_slice(what: str, rescue: Optional[Callable[[], bool]] = None) -> int:
    """One slice of the scheduler on this thread: 0 none left, 1 some left; raises Deadlock when
    every goroutine is asleep for good, unless ``rescue()`` (the calling thread's own pending
    operation, for a blocking call that drives goroutines) succeeds: then RESCUED."""
    rc = _lib.gs_py_run(_SLICE_NS)
    _check_stop()
    if rc == GS_EDEADLOCK or (rc == 1 and _lib.gs_py_asleep() == 1 and not _outside_may_wake()):
        if rescue is not None and rescue():
            return RESCUED
        raise _deadlock(what)
    if rc < 0:
        fail(rc, what)
    _deliver_signals()
    return rc


def run() -> None:
    """Runs goroutines on the calling thread until every goroutine has ended.

    Raises ``BaseExceptionGroup`` of the exceptions that escaped goroutines (after all ended), or
    re-raises at once a ``KeyboardInterrupt``/``SystemExit`` raised in one: no other goroutine
    runs after it; the ones not started stay queued, with their ids and order, for the next
    ``run()``. Ctrl-C lands here (never inside a goroutine) within about
    :data:`RUN_SLICE_SECONDS` (unless a goroutine computes without switching). ``WrongState``
    from inside a goroutine.

    Raises :class:`Deadlock` when every goroutine left is blocked for good (on channels, mutexes,
    wait groups; no ``sleep`` pending; no thread that used gostack able to wake one: threads that
    never called gostack do not count). The exceptions that escaped goroutines of this run
    before it deadlocked come with it (``Deadlock.exceptions``). The blocked goroutines stay
    parked: a later ``run()`` resumes them if something woke them.
    """
    if _gs_self() != 0:
        raise WrongState("run: called from inside a goroutine", GS_ESTATE)
    me = _get_ident()
    _runners[me] = _runners.get(me, 0) + 1
    try:
        with _deferred_signals():
            _deliver_signals()
            while _run_slice("run"):
                pass
    finally:
        n = _runners.pop(me, 1) - 1
        if n:
            _runners[me] = n
    with _failures_lock:
        failed = list(_failures)
        _failures.clear()
    if failed:
        raise _group(f"{len(failed)} goroutine(s) raised", failed)


def someone_runs() -> bool:
    """Is a thread running goroutines (in run() or driving them from a blocking call)?"""
    return bool(_runners)


class blocked_outside:
    """Marks the calling plain thread blocked in a gostack call (for the deadlock rule)."""

    def __enter__(self) -> None:
        me = _get_ident()
        _participants[me] = True
        _blocked[me] = _blocked.get(me, 0) + 1

    def __exit__(self, *exc: Any) -> None:
        me = _get_ident()
        n = _blocked.pop(me, 1) - 1
        if n:
            _blocked[me] = n


# ---- the rest of the API ------------------------------------------------------------------------


# ---- greenlet -----------------------------------------------------------------------------------
#
# greenlet keeps one state per OS thread (the current greenlet, the main greenlet's saved stack
# slice) and assumes one C stack per thread. Greenlets used *within* a goroutine work: while the
# thread's main greenlet runs, nothing of another greenlet lives on the goroutine's C stack
# (greenlet copies it to the heap on the way out). A goroutine that switches while inside a
# non-main greenlet leaves the thread's greenlet state pointing into its stack, and the next
# goroutine that switches greenlets on that thread copies the wrong memory (measured: "Fatal
# Python error: g_switchstack", or a gostack stack-overflow fatal). So that case is refused.

_modules = sys.modules


def _check_greenlet(what: str) -> None:
    """Raises WrongState when the calling goroutine runs inside a non-main greenlet."""
    gl = _modules.get("greenlet")
    if gl is not None and gl.getcurrent().parent is not None:
        raise WrongState(f"{what}: cannot switch goroutines inside a greenlet (switch back to the "
                         "thread's main greenlet first: greenlet keeps one stack per OS thread)", GS_ESTATE)


def yield_() -> None:
    """Lets the other goroutines run (Go's ``runtime.Gosched``). ``NotInGoroutine`` outside one;
    ``WrongState`` inside a greenlet other than the thread's main one."""
    if "greenlet" in _modules:
        _check_greenlet("yield_")
    rc = _gs_yield()
    if rc:
        fail(rc, "yield_")


gosched = yield_


def sleep(seconds: float) -> None:
    """Parks the calling goroutine for at least ``seconds`` (clamped to ~292 years: forever);
    outside goroutines, ``time.sleep``."""
    ns = seconds_to_ns(seconds, "sleep")
    if _gs_self() == 0:
        time.sleep(min(float(seconds), threading.TIMEOUT_MAX))
        return
    _check_greenlet("sleep")
    rc = _lib.f_sleep(ns)
    if rc:
        fail(rc, "sleep")


def goid() -> int:
    """The id of the calling goroutine, 0 outside goroutines."""
    return _gs_self()


def systemstack(fn: Callable[[], T]) -> T:
    """Calls ``fn()`` on the OS thread's own stack and returns its result.

    What it is for: C code that must not run on a goroutine stack (it publishes stack addresses
    to other threads, say). What it is not for: deep recursion. The thread's stack (8 MiB for
    the main thread, as ``ulimit -s``) is usually no larger than a goroutine's, CPython's
    recursion limit is unchanged, and an overflow there is a plain SIGSEGV, not gostack's
    "stack overflow" message. For deep recursion use ``go_with(fn, stack_size=...)`` (and
    ``sys.setrecursionlimit``). Inside ``fn``, switching calls (``yield_``, blocking operations)
    raise ``WrongState``.
    """
    out: List[Any] = []

    def cb(_arg: Any) -> None:
        try:
            out.append((True, fn()))
        except BaseException as e:
            out.append((False, e))

    cfn = _ffi.GS_FN(cb)
    check(_lib.gs_systemstack(cfn, None), "systemstack")
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
    s = _ffi.gs_stats()
    check(_lib.gs_get_stats(ctypes.byref(s)), "stats")
    return Stats(*(getattr(s, f) for f, _ in _ffi.gs_stats._fields_))


def set_maxprocs(n: int) -> int:
    """Sets the number of Ps (OS threads running goroutines at once); returns the previous value.

    Python goroutines run one at a time under the GIL whatever this says, so ``import gostack``
    sets it to 1 unless ``GOSTACK_MAXPROCS`` is set: all goroutines then run in the thread inside
    :func:`run`, like greenlet. Raising it only helps C goroutines spawned from C code, and has a
    hazard for Python ones: a Python goroutine that yields inside a C callback that holds a lock
    (an sqlite3 user function, say) can deadlock with a Python goroutine on another thread that
    waits for that lock while holding the GIL. ``OverflowError`` beyond a C int.
    """
    return check(_lib.gs_set_maxprocs(_ffi.c_range(n, -_ffi.INT_MAX - 1, _ffi.INT_MAX, "set_maxprocs")),
                 "set_maxprocs")


def maxprocs() -> int:
    """The number of Ps."""
    return _lib.gs_maxprocs()


def _default_one_p() -> None:
    # See set_maxprocs: one P unless the user chose otherwise through the environment.
    if "GOSTACK_MAXPROCS" not in os.environ:
        _lib.gs_set_maxprocs(1)


_default_one_p()


@_ffi.on_reload
def _after_fork_in_child() -> None:
    """The child of a fork runs a fresh runtime (the reloaded library): no goroutine of the
    parent, no collected failure, nobody in run(), the same stack-size default and one P."""
    _rebind()
    _failures.clear()
    _stop.clear()
    _participants.clear()
    _runners.clear()
    _blocked.clear()
    _pending_signals.clear()
    global _failures_lock
    _failures_lock = threading.Lock()
    if _ffi.reload_error is None:
        _default_one_p()
