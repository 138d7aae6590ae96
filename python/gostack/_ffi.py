"""The one boundary between Python and libgostack.so: loader, C signatures, status codes, errors,
and the base class of every object that owns a C handle.

Every other module of the package imports this one and nothing below it; nothing here imports
them (layers go one way).

Library search order:
  1. ``$GOSTACK_LIBRARY`` (a path to the .so); when set, nothing else is tried.
  2. ``libgostack.so`` bundled in this package directory (``pip install ./python`` puts it there).
  3. A development checkout: ``target/release``, ``target/release/deps``, ``target/debug`` of
     the repository this package lives in.

Two handles on the same library: ``PY`` (``ctypes.PyDLL``: the GIL stays held, for calls that
touch Python objects or never block) and ``C`` (``ctypes.CDLL``: the GIL is released around the
call, for every call that may switch goroutines or block).

Fork (see :func:`_after_fork_in_child`): the child of ``os.fork()`` has one thread, but the
library's state (scheduler, threads, goroutines, locks that other threads held) was copied from
the parent and cannot be trusted. The child therefore loads a *fresh copy* of the library (from a
``memfd`` the parent filled: a new inode, so the dynamic loader maps new code and new statics) and
rebinds every function in place; objects of the parent's library (channels, goroutines) belong to
the parent and raise :class:`Stale` in the child. :data:`generation` counts these reloads.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p, py_object
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

#: Library versions this package works with: same major.minor.
COMPATIBLE_VERSION = (0, 1)

_PKG_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PKG_DIR.parent.parent

# ---- status codes (include/gostack.h; python/tests/test_ffi.py checks them against it) ----------

GS_OK = 0
GS_EINVAL = -1
GS_ENOMEM = -2
GS_ENOTGOROUTINE = -3
GS_ECLOSED = -4
GS_EDEADLOCK = -5
GS_ETIMEDOUT = -6
GS_EAGAIN = -7
GS_EBUSY = -8
GS_ESTATE = -9
GS_EPANIC = -10

GS_STACK_GROWABLE = 0
GS_STACK_FIXED = 1
GS_STACK_MIN = 8 * 1024
GS_STACK_MAX = 68719476736
GS_CASE_SEND = 1
GS_CASE_RECV = 2

#: Ranges of the C integer types used below (ctypes wraps out-of-range ints silently).
INT_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
SIZE_MAX = 2**64 - 1

# ---- errors -------------------------------------------------------------------------------------


class Error(Exception):
    """A gostack call failed; ``code`` is the ``GS_E*`` status (negative int)."""

    code: int = 0

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidArgument(Error, ValueError):
    code = GS_EINVAL


class OutOfMemory(Error, MemoryError):
    code = GS_ENOMEM


class NotInGoroutine(Error):
    """The call needs to run inside a goroutine (``yield_`` on a plain thread)."""

    code = GS_ENOTGOROUTINE


class ChannelClosed(Error):
    code = GS_ECLOSED


class Deadlock(Error):
    """Every goroutine left is blocked for good. ``exceptions``: what escaped goroutines of the
    same ``run()`` before it deadlocked (also chained as ``__cause__``)."""

    code = GS_EDEADLOCK
    exceptions: List[BaseException] = []


class Timeout(Error, TimeoutError):
    code = GS_ETIMEDOUT


class WouldBlock(Error):
    code = GS_EAGAIN


class Busy(Error):
    code = GS_EBUSY


class WrongState(Error):
    """Wrong runtime state, e.g. ``run()`` from inside a goroutine."""

    code = GS_ESTATE


class InternalError(Error):
    code = GS_EPANIC


class Unavailable(Error, NotImplementedError):
    """The loaded libgostack.so lacks the C functions this feature needs."""


class Freed(WrongState, ValueError):
    """Operation on a gostack object after its ``free()``."""


class Stale(WrongState):
    """Operation, in the child of ``os.fork()``, on a gostack object made by the parent: the child
    runs a fresh runtime, and the parent's channels and locks stay the parent's."""


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (InvalidArgument, OutOfMemory, NotInGoroutine, ChannelClosed, Deadlock, Timeout, WouldBlock,
                Busy, WrongState, InternalError)
}


def error_for(code: int, what: str, strerror: str) -> Error:
    cls = _BY_CODE.get(code, Error)
    return cls(f"{what}: {strerror} ({code})", code)


def strerror(code: int) -> str:
    return (lib.gs_strerror(code) or b"?").decode()


def fail(code: int, what: str) -> None:
    """Raises the :class:`Error` for status ``code`` (negative)."""
    raise error_for(code, what, strerror(code))


def check(rc: int, what: str) -> int:
    """Returns ``rc`` if it is not an error status; raises the matching :class:`Error` otherwise."""
    if rc < 0:
        fail(rc, what)
    return rc


def c_range(value: int, lo: int, hi: int, what: str) -> int:
    """``value`` if it fits a C parameter of range [lo, hi]; ``OverflowError`` otherwise (ctypes
    would wrap it silently: ``Chan(2**64)`` became a capacity of 0)."""
    value = int(value)
    if not lo <= value <= hi:
        raise OverflowError(f"{what}: {value} is out of range [{lo}, {hi}]")
    return value


#: The longest duration passed to C (~146 years: "forever"). Not INT64_MAX: the runtime's
#: deadline (now + duration) saturates there, and a timer at i64::MAX reads as "no timer", so a
#: goroutine sleeping "forever" looked deadlocked.
FOREVER_NS = 2**62


def seconds_to_ns(seconds: float, what: str) -> int:
    """A duration in ns for the C API, clamped to :data:`FOREVER_NS` (Go's durations end at ~292
    years); ``InvalidArgument`` for negative or NaN durations."""
    s = float(seconds)
    if s != s:
        raise InvalidArgument(f"{what}: duration is NaN", GS_EINVAL)
    if s < 0:
        raise InvalidArgument(f"{what}: negative duration", GS_EINVAL)
    ns = s * 1e9
    return FOREVER_NS if ns >= FOREVER_NS else int(ns)


# ---- C types and signatures ---------------------------------------------------------------------


class gs_stats(ctypes.Structure):
    _fields_ = [
        ("goroutines_live", c_uint64),
        ("goroutines_total", c_uint64),
        ("switches", c_uint64),
        ("stack_reserved", c_uint64),
        ("stack_committed", c_uint64),
        ("stack_grows", c_uint64),
        ("stack_shrinks", c_uint64),
        ("maxprocs", c_uint32),
        ("threads", c_uint32),
        ("stack_moves", c_uint64),
        ("stack_releases", c_uint64),
        ("stack_in_use", c_uint64),
        ("stack_pooled", c_uint64),
        ("goroutine_records", c_uint64),
    ]


class gs_case(ctypes.Structure):
    """``struct gs_case``: chan, dir, elem, status."""

    _fields_ = [("chan", c_void_p), ("dir", c_int32), ("elem", c_void_p), ("status", c_int32)]


GS_FN = ctypes.CFUNCTYPE(None, c_void_p)

KEEP, RELEASE = "keep GIL", "release GIL"
#: GIL released, and errno kept for ``ctypes.get_errno()`` (gs_read/gs_write report through it).
RELEASE_ERRNO = "release GIL, keep errno"

#: name: (argtypes, restype, GIL policy).
SIGNATURES: Dict[str, Tuple[List[Any], Any, str]] = {
    "gs_version": ([], c_char_p, KEEP),
    "gs_strerror": ([c_int], c_char_p, KEEP),
    "gs_self": ([], c_int64, KEEP),
    "gs_get_stats": ([POINTER(gs_stats)], c_int, KEEP),
    "gs_py_spawn": ([py_object, c_size_t], c_int64, KEEP),
    "gs_py_spawn_call": ([py_object, py_object, py_object, c_size_t], c_int64, KEEP),
    "gs_py_run": ([c_int64], c_int, RELEASE),
    "gs_py_stop": ([], c_int, KEEP),
    "gs_py_asleep": ([], c_int, KEEP),
    "gs_yield": ([], c_int, RELEASE),
    "gs_sleep": ([c_int64], c_int, RELEASE),
    # The callback re-takes the GIL itself (PyGILState_Ensure sees the goroutine's state).
    "gs_systemstack": ([GS_FN, c_void_p], c_int, KEEP),
    "gs_set_maxprocs": ([c_int], c_int, KEEP),
    "gs_maxprocs": ([], c_int, KEEP),
    "gs_chan_new": ([c_size_t, c_size_t], c_void_p, KEEP),
    "gs_chan_free": ([c_void_p], c_int, KEEP),
    "gs_chan_send": ([c_void_p, c_void_p], c_int, RELEASE),
    "gs_chan_recv": ([c_void_p, c_void_p], c_int, RELEASE),
    "gs_chan_recv_timeout": ([c_void_p, c_void_p, c_int64], c_int, RELEASE),
    "gs_chan_try_send": ([c_void_p, c_void_p], c_int, KEEP),
    "gs_chan_try_recv": ([c_void_p, c_void_p], c_int, KEEP),
    "gs_chan_close": ([c_void_p], c_int, KEEP),
    "gs_chan_len": ([c_void_p], c_int64, KEEP),
    "gs_chan_cap": ([c_void_p], c_int64, KEEP),
    "gs_select": ([POINTER(gs_case), c_size_t, c_int64], c_int, RELEASE),
    "gs_waitgroup_new": ([], c_void_p, KEEP),
    "gs_waitgroup_add": ([c_void_p, c_int64], c_int, KEEP),
    "gs_waitgroup_done": ([c_void_p], c_int, KEEP),
    "gs_waitgroup_wait": ([c_void_p], c_int, RELEASE),
    "gs_waitgroup_free": ([c_void_p], c_int, KEEP),
    "gs_mutex_new": ([], c_void_p, KEEP),
    "gs_mutex_lock": ([c_void_p], c_int, RELEASE),
    "gs_mutex_unlock": ([c_void_p], c_int, KEEP),
    "gs_mutex_trylock": ([c_void_p], c_int, KEEP),
    "gs_mutex_free": ([c_void_p], c_int, KEEP),
    "gs_sema_new": ([c_int64], c_void_p, KEEP),
    "gs_sema_acquire": ([c_void_p], c_int, RELEASE),
    "gs_sema_try_acquire": ([c_void_p], c_int, KEEP),
    "gs_sema_release": ([c_void_p], c_int, KEEP),
    "gs_sema_free": ([c_void_p], c_int, KEEP),
    # I/O (issue #13): the wait parks a goroutine (GIL released); the close never blocks.
    "gs_fd_wait": ([c_int, c_int, c_int64], c_int, RELEASE),
    "gs_fd_close": ([c_int], c_int, KEEP),
    "gs_read": ([c_int, c_void_p, c_size_t], ctypes.c_ssize_t, RELEASE_ERRNO),
    "gs_write": ([c_int, c_void_p, c_size_t], ctypes.c_ssize_t, RELEASE_ERRNO),
}

CFn = Callable[..., Any]

#: The calls also bound as Python built-ins (``gs_py_fastcalls``, src/abi/pyfast.rs): on
#: :class:`Library` as ``f_<name without gs_>``, taking ints only (pointers as addresses). A
#: parked goroutine keeps less C stack than under a ctypes call (~1 KB less: its memory on the
#: copy stack kind) and no arguments are converted. If the library cannot make them, the ctypes
#: functions stand in (same arguments).
FASTCALLS = ("gs_yield", "gs_sleep", "gs_self", "gs_chan_send", "gs_chan_recv", "gs_chan_try_send",
             "gs_chan_try_recv", "gs_chan_recv_timeout", "gs_select", "gs_waitgroup_wait", "gs_mutex_lock",
             "gs_sema_acquire", "gs_fd_wait")


class Library:
    """libgostack.so with every function of :data:`SIGNATURES` declared (typed for checkers)."""

    path: Path
    version: str
    gs_version: CFn
    gs_strerror: Callable[[int], Optional[bytes]]
    gs_self: Callable[[], int]
    gs_get_stats: CFn
    gs_py_spawn: Callable[[Any, int], int]
    gs_py_spawn_call: Callable[[Any, Any, Any, int], int]
    gs_py_run: Callable[[int], int]
    gs_py_stop: Callable[[], int]
    gs_py_asleep: Callable[[], int]
    gs_yield: Callable[[], int]
    gs_sleep: Callable[[int], int]
    gs_systemstack: CFn
    gs_set_maxprocs: Callable[[int], int]
    gs_maxprocs: Callable[[], int]
    gs_chan_new: Callable[[int, int], Optional[int]]
    gs_chan_free: Callable[[int], int]
    gs_chan_send: CFn
    gs_chan_recv: CFn
    gs_chan_recv_timeout: CFn
    gs_chan_try_send: CFn
    gs_chan_try_recv: CFn
    gs_chan_close: Callable[[int], int]
    gs_chan_len: Callable[[int], int]
    gs_chan_cap: Callable[[int], int]
    gs_select: CFn
    gs_waitgroup_new: Callable[[], Optional[int]]
    gs_waitgroup_add: Callable[[int, int], int]
    gs_waitgroup_done: Callable[[int], int]
    gs_waitgroup_wait: Callable[[int], int]
    gs_waitgroup_free: Callable[[int], int]
    gs_mutex_new: Callable[[], Optional[int]]
    gs_mutex_lock: Callable[[int], int]
    gs_mutex_unlock: Callable[[int], int]
    gs_mutex_trylock: Callable[[int], int]
    gs_mutex_free: Callable[[int], int]
    gs_sema_new: Callable[[int], Optional[int]]
    gs_sema_acquire: Callable[[int], int]
    gs_sema_try_acquire: Callable[[int], int]
    gs_sema_release: Callable[[int], int]
    gs_sema_free: Callable[[int], int]
    gs_fd_wait: Callable[[int, int, int], int]
    gs_fd_close: Callable[[int], int]
    gs_read: CFn
    gs_write: CFn
    # FASTCALLS, as built-ins
    f_yield: Callable[[], int]
    f_sleep: Callable[[int], int]
    f_self: Callable[[], int]
    f_chan_send: Callable[[int, int], int]
    f_chan_recv: Callable[[int, int], int]
    f_chan_try_send: Callable[[int, int], int]
    f_chan_try_recv: Callable[[int, int], int]
    f_chan_recv_timeout: Callable[[int, int, int], int]
    f_select: Callable[[int, int, int], int]
    f_waitgroup_wait: Callable[[int], int]
    f_mutex_lock: Callable[[int], int]
    f_sema_acquire: Callable[[int], int]
    f_fd_wait: Callable[[int, int, int], int]

    def __init__(self, path: Path, py: ctypes.PyDLL, c: ctypes.CDLL, version: str) -> None:
        self.bind(path, py, c, version)

    def bind(self, path: Path, py: ctypes.PyDLL, c: ctypes.CDLL, version: str) -> None:
        """(Re)declares every function from ``py``/``c``; raises ``OSError`` if one is missing."""
        fns = {}
        ce = ctypes.CDLL(str(path), use_errno=True)
        for name, (argtypes, restype, gil) in SIGNATURES.items():
            try:
                fn = getattr(py if gil == KEEP else c if gil == RELEASE else ce, name)
            except AttributeError:
                raise OSError(
                    f"gostack: {path} (version {version}) lacks {name}: it is not the library "
                    "this package was written for; rebuild it (`cargo build --release`) or reinstall."
                ) from None
            fn.argtypes = argtypes
            fn.restype = restype
            fns[name] = fn
        try:
            table = py.gs_py_fastcalls
            table.argtypes, table.restype = [], ctypes.py_object
            fast = table()
        except (AttributeError, ValueError):
            fast = {}
        for name in FASTCALLS:
            f = fast.get(name)
            if f is None:
                f = fns[name]
                if name == "gs_select":  # POINTER(gs_case) takes no int
                    f = functools.partial(_select_by_address, f)
            fns["f_" + name[3:]] = f
        self.path, self.version, self.PY, self.C = path, version, py, c
        self.__dict__.update(fns)


def _select_by_address(select: CFn, cases: int, n: int, timeout_ns: int) -> int:
    return select(ctypes.cast(cases, POINTER(gs_case)), n, timeout_ns)


def candidates() -> List[Path]:
    """Where the library is looked for, in order."""
    env = os.environ.get("GOSTACK_LIBRARY")
    if env:
        return [Path(env)]
    return [
        _PKG_DIR / "libgostack.so",
        _REPO_DIR / "target" / "release" / "libgostack.so",
        _REPO_DIR / "target" / "release" / "deps" / "libgostack.so",
        _REPO_DIR / "target" / "debug" / "libgostack.so",
    ]


def _fail(tried: List[Path], errors: List[str]) -> OSError:
    lines = ["gostack: cannot load libgostack.so."]
    lines += [f"  tried {p}: {e}" for p, e in zip(tried, errors)]
    lines += [
        "Likely causes:",
        "  - the package was installed without building the library: reinstall with `pip install ./python`"
        " (needs cargo);",
        "  - in a checkout: run `cargo build --release` at the repository root;",
        "  - $GOSTACK_LIBRARY is set to a wrong path (unset it or point it at libgostack.so);",
        "  - the library was built for another architecture or an older/newer gostack version;",
        "  - not x86_64 Linux (gostack supports only x86_64 Linux with glibc).",
    ]
    return OSError("\n".join(lines))


def _open(path: Path, errors: List[str]) -> Optional[Tuple[ctypes.PyDLL, ctypes.CDLL, str]]:
    try:
        py = ctypes.PyDLL(str(path))
        c = ctypes.CDLL(str(path))
    except OSError as e:
        errors.append(str(e))
        return None
    try:
        ver_fn = py.gs_version
    except AttributeError:
        errors.append("not a gostack library (no gs_version)")
        return None
    ver_fn.restype = c_char_p
    ver_fn.argtypes = []
    version = (ver_fn() or b"?").decode()
    try:
        major_minor = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        major_minor = ()
    if major_minor != COMPATIBLE_VERSION:
        errors.append(f"version {version}, this package needs {COMPATIBLE_VERSION[0]}.{COMPATIBLE_VERSION[1]}.x")
        return None
    return py, c, version


def load() -> Library:
    """Finds, opens and declares the library (a new :class:`Library` each call)."""
    tried: List[Path] = []
    errors: List[str] = []
    for path in candidates():
        tried.append(path)
        if not path.exists():
            errors.append("no such file")
            continue
        opened = _open(path, errors)
        if opened is not None:
            return Library(path, *opened)
    raise _fail(tried, errors)


#: The library in use. Modules keep this object (never a copy of its attributes, except through
#: :func:`on_reload`): a fork child rebinds it in place.
lib: Library = load()

#: How many times this process reloaded the library (fork children: see the module doc).
generation = 0

# ---- handles ------------------------------------------------------------------------------------


class Handle:
    """A runtime object behind a C handle: ``gs_<_kind>_new`` made it, ``gs_<_kind>_free`` frees it.

    One lifetime for every kind: usable until :meth:`free` (idempotent), then every operation
    raises :class:`Freed`; in a fork child, objects of the parent raise :class:`Stale` (and are
    never freed there). A handle is a reference, as in Go: ``copy``/``deepcopy`` of a channel
    return the channel itself (:class:`gostack.Chan` overrides nothing: see ``_COPY``); the
    lock-like kinds refuse to be copied, like ``threading.Lock``; nothing is picklable (a handle is
    an address in this process).
    """

    __slots__ = ("_h", "_gen", "__weakref__")
    _kind = ""
    #: What ``copy.copy``/``copy.deepcopy`` do: "share" (return self) or "refuse" (TypeError).
    _COPY = "refuse"

    def __init__(self, h: Optional[int]) -> None:
        if not h:
            raise OutOfMemory(f"{type(self).__name__}: gs_{self._kind}_new failed", GS_ENOMEM)
        self._h: Optional[int] = h
        self._gen = generation

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise Freed(f"operation on a freed gostack.{type(self).__name__}", GS_ESTATE)
        if self._gen != generation:
            raise Stale(f"gostack.{type(self).__name__} made before os.fork() is not usable in the child "
                        "(the child runs a fresh runtime; make new objects there)", GS_ESTATE)
        return h

    def _call(self, fn: CFn, what: str, *args: Any) -> int:
        """``fn(handle, *args)``; an error status becomes the matching :class:`Error`."""
        rc = fn(self._handle(), *args)
        if rc < 0:
            fail(rc, f"{type(self).__name__}.{what}")
        return rc

    def _release(self, h: int) -> int:
        """Frees the C object (hook for kinds that drain it first); returns the status."""
        return getattr(lib, f"gs_{self._kind}_free")(h)

    def free(self) -> None:
        """Frees the C object; later operations raise :class:`Freed`. ``Busy`` while goroutines
        wait on it (it stays usable). Idempotent."""
        if self._h is None:
            return
        h = self._handle()
        rc = self._release(h)
        if rc < 0:
            fail(rc, f"{type(self).__name__}.free")
        self._h = None

    @property
    def freed(self) -> bool:
        return self._h is None

    def __del__(self) -> None:
        # Best effort only (call free() for deterministic release); a parent's object in a fork
        # child is the parent's: never freed here.
        try:
            if getattr(self, "_h", None) is not None and self._gen == generation:
                self.free()
        except Exception:
            pass

    def __copy__(self) -> Any:
        if self._COPY == "share":
            return self
        raise TypeError(f"cannot copy gostack.{type(self).__name__} (like threading.Lock; share the object)")

    def __deepcopy__(self, memo: Any) -> Any:
        return self.__copy__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"cannot pickle gostack.{type(self).__name__}: it is a handle to runtime memory of "
                        "this process")


# ---- fork ---------------------------------------------------------------------------------------

_reload_hooks: List[Callable[[], None]] = []
#: A memfd holding a copy of the library, made once per process at its first fork (-1: none yet).
_copy_fd = -1
_copy_of: Optional[str] = None


def on_reload(fn: Callable[[], None]) -> Callable[[], None]:
    """Registers ``fn`` to run after the library was reloaded in a fork child (rebind cached
    functions, drop per-runtime Python state)."""
    _reload_hooks.append(fn)
    return fn


_copy_error = "no copy of the library was made before fork"


def _before_fork() -> None:
    global _copy_fd, _copy_of, _copy_error
    if _copy_fd >= 0 and _copy_of == str(lib.path):
        return
    try:
        # CLOEXEC: fork keeps it (the child needs it), exec drops it.
        fd = os.memfd_create("libgostack-fork", os.MFD_CLOEXEC)
        with open(lib.path, "rb") as src:
            data = src.read()
        n = 0
        while n < len(data):
            n += os.write(fd, data[n:])
        if _copy_fd >= 0:
            os.close(_copy_fd)
        _copy_fd, _copy_of = fd, str(lib.path)
    except OSError as e:
        _copy_fd = -1
        _copy_error = f"no copy of the library for fork children: {e}"


#: Why the fork child could not reload the library (None: it did, or no fork happened).
reload_error: Optional[str] = None


def _after_fork_in_child() -> None:
    global generation, _copy_fd, _copy_of, reload_error
    generation += 1
    errors: List[str] = []
    opened = None
    path = Path(f"/proc/self/fd/{_copy_fd}")
    if _copy_fd >= 0:
        opened = _open(path, errors)
    if opened is None:
        # Never call the parent's copy in the child (its locks may be held by threads that do
        # not exist here): every function refuses, with the reason.
        reload_error = "; ".join(errors) or _copy_error
        lib.__dict__.update({name: _refuse_in_child for name in SIGNATURES})
        lib.__dict__.update({"f_" + name[3:]: _refuse_in_child for name in FASTCALLS})
    else:
        lib.bind(path, *opened)
        reload_error = None
    # Our own copy for our children is made at our first fork; the inherited fd is theirs to keep
    # open (the mapping stays valid after close, but keep it simple: close it).
    if _copy_fd >= 0:
        try:
            os.close(_copy_fd)
        except OSError:
            pass
    _copy_fd, _copy_of = -1, None
    for hook in _reload_hooks:
        hook()


def _refuse_in_child(*args: Any) -> Any:
    raise WrongState(f"gostack is unusable in this fork child: the library could not be reloaded "
                     f"({reload_error})", GS_ESTATE)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def header_codes(header: str) -> Dict[str, int]:
    """``#define GS_*`` integer constants of include/gostack.h's text (for the test)."""
    out = {}
    for m in re.finditer(r"^#define (GS_[A-Z_]+) \(?(-?\d+)(?: \* (\d+))?\)?\s*$", header, re.M):
        v = int(m.group(2)) * (int(m.group(3)) if m.group(3) else 1)
        out[m.group(1)] = v
    return out
