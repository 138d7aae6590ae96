"""Finds and loads libgostack.so, and declares every C function used (one table).

Search order:
  1. ``$GOSTACK_LIBRARY`` (a path to the .so); when set, nothing else is tried.
  2. ``libgostack.so`` bundled in this package directory (``pip install ./python`` puts it there).
  3. A development checkout: ``target/release``, ``target/release/deps``, ``target/debug`` of
     the repository this package lives in.

Two handles on the same library: ``PY`` (``ctypes.PyDLL``: the GIL stays held, for calls that
touch Python objects or never block) and ``C`` (``ctypes.CDLL``: the GIL is released around the
call, for every call that may switch goroutines or block).
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p, py_object
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

#: Library versions this package works with: same major.minor.
COMPATIBLE_VERSION = (0, 1)

_PKG_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PKG_DIR.parent.parent


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
    """``gs_case`` of API.md (channels branch): chan, dir, elem, status."""

    _fields_ = [("chan", c_void_p), ("dir", c_int32), ("elem", c_void_p), ("status", c_int32)]


GS_FN = ctypes.CFUNCTYPE(None, c_void_p)

KEEP, RELEASE = "keep GIL", "release GIL"

#: name: (argtypes, restype, GIL policy, required). Optional functions come from branches that
#: are not merged yet (channels, select, mutex, waitgroup, maxprocs); they are None when absent.
SIGNATURES: Dict[str, Tuple[List[Any], Any, str, bool]] = {
    "gs_version": ([], c_char_p, KEEP, True),
    "gs_strerror": ([c_int], c_char_p, KEEP, True),
    "gs_self": ([], c_int64, KEEP, True),
    "gs_get_stats": ([POINTER(gs_stats)], c_int, KEEP, True),
    "gs_py_spawn": ([py_object, c_size_t], c_int64, KEEP, True),
    "gs_py_run": ([c_int64], c_int, RELEASE, True),
    "gs_yield": ([], c_int, RELEASE, True),
    "gs_sleep": ([c_int64], c_int, RELEASE, True),
    # The callback re-takes the GIL itself (PyGILState_Ensure sees the goroutine's state).
    "gs_systemstack": ([GS_FN, c_void_p], c_int, KEEP, True),
    "gs_set_maxprocs": ([c_int], c_int, KEEP, False),
    "gs_maxprocs": ([], c_int, KEEP, False),
    "gs_chan_new": ([c_size_t, c_size_t], c_void_p, KEEP, False),
    "gs_chan_free": ([c_void_p], c_int, KEEP, False),
    "gs_chan_send": ([c_void_p, c_void_p], c_int, RELEASE, False),
    "gs_chan_recv": ([c_void_p, c_void_p], c_int, RELEASE, False),
    "gs_chan_recv_timeout": ([c_void_p, c_void_p, c_int64], c_int, RELEASE, False),
    "gs_chan_try_send": ([c_void_p, c_void_p], c_int, KEEP, False),
    "gs_chan_try_recv": ([c_void_p, c_void_p], c_int, KEEP, False),
    "gs_chan_close": ([c_void_p], c_int, KEEP, False),
    "gs_chan_len": ([c_void_p], c_int64, KEEP, False),
    "gs_chan_cap": ([c_void_p], c_int64, KEEP, False),
    "gs_select": ([POINTER(gs_case), c_size_t, c_int64], c_int, RELEASE, False),
    "gs_waitgroup_new": ([], c_void_p, KEEP, False),
    "gs_waitgroup_add": ([c_void_p, c_int64], c_int, KEEP, False),
    "gs_waitgroup_done": ([c_void_p], c_int, KEEP, False),
    "gs_waitgroup_wait": ([c_void_p], c_int, RELEASE, False),
    "gs_waitgroup_free": ([c_void_p], c_int, KEEP, False),
    "gs_mutex_new": ([], c_void_p, KEEP, False),
    "gs_mutex_lock": ([c_void_p], c_int, RELEASE, False),
    "gs_mutex_unlock": ([c_void_p], c_int, KEEP, False),
    "gs_mutex_trylock": ([c_void_p], c_int, KEEP, False),
    "gs_mutex_free": ([c_void_p], c_int, KEEP, False),
}


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


class Library:
    def __init__(self, path: Path, py: ctypes.PyDLL, c: ctypes.CDLL, version: str) -> None:
        self.path = path
        self.version = version
        self.PY = py
        self.C = c
        self.missing: List[str] = []
        for name, (argtypes, restype, gil, required) in SIGNATURES.items():
            lib = py if gil == KEEP else c
            try:
                fn = getattr(lib, name)
            except AttributeError:
                if required:
                    raise OSError(
                        f"gostack: {path} (version {version}) lacks {name}: it is not the library "
                        "this package was written for; rebuild it (`cargo build --release`) or reinstall."
                    ) from None
                self.missing.append(name)
                setattr(self, name, None)
                continue
            fn.argtypes = argtypes
            fn.restype = restype
            setattr(self, name, fn)

    def __getattr__(self, name: str) -> Any:  # only for type checkers; real attributes set above
        raise AttributeError(name)


def load() -> Library:
    tried: List[Path] = []
    errors: List[str] = []
    for path in candidates():
        tried.append(path)
        if not path.exists():
            errors.append("no such file")
            continue
        try:
            py = ctypes.PyDLL(str(path))
            c = ctypes.CDLL(str(path))
        except OSError as e:
            errors.append(str(e))
            continue
        try:
            ver_fn = py.gs_version
        except AttributeError:
            errors.append("not a gostack library (no gs_version)")
            continue
        ver_fn.restype = c_char_p
        ver_fn.argtypes = []
        version = (ver_fn() or b"?").decode()
        try:
            major_minor = tuple(int(x) for x in version.split(".")[:2])
        except ValueError:
            major_minor = ()
        if major_minor != COMPATIBLE_VERSION:
            errors.append(f"version {version}, this package needs {COMPATIBLE_VERSION[0]}.{COMPATIBLE_VERSION[1]}.x")
            continue
        return Library(path, py, c, version)
    raise _fail(tried, errors)


_LIB: Optional[Library] = None


def lib() -> Library:
    global _LIB
    if _LIB is None:
        _LIB = load()
    return _LIB
