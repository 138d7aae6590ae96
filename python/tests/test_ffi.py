"""The FFI boundary (issue 18, item 5): codes and signatures against include/gostack.h, one handle
base with one lifetime, layers that import one way."""

import ast
import ctypes
import re
from pathlib import Path

import pytest

import gostack
from gostack import _ffi

REPO = Path(__file__).resolve().parents[2]
HEADER = (REPO / "include" / "gostack.h").read_text()
PKG = Path(gostack.__file__).parent


def test_codes_match_the_header():
    header = _ffi.header_codes(HEADER)
    ours = {k: v for k, v in vars(_ffi).items() if k.startswith("GS_") and isinstance(v, int)}
    assert ours, "no GS_* constants in _ffi"
    for name, value in ours.items():
        assert header.get(name) == value, f"{name}: _ffi says {value}, include/gostack.h says {header.get(name)}"
    # Every status code of the header is known here (a new code needs an error class).
    for name in header:
        if name.startswith("GS_E") or name == "GS_OK":
            assert name in ours, f"{name} of include/gostack.h is missing from _ffi"


def test_error_classes_cover_every_status_code():
    codes = {v for k, v in vars(_ffi).items() if k.startswith("GS_E") and isinstance(v, int)}
    assert codes == set(_ffi._BY_CODE), codes ^ set(_ffi._BY_CODE)
    for code, cls in _ffi._BY_CODE.items():
        e = _ffi.error_for(code, "op", _ffi.strerror(code))
        assert type(e) is cls and e.code == code and "op:" in str(e)


C_TYPES = {"int": ctypes.c_int, "int64_t": ctypes.c_int64, "size_t": ctypes.c_size_t, "ssize_t": ctypes.c_ssize_t}


def same_int_type(t, want):
    """ctypes spells int64_t c_long on this ABI: compare size and signedness."""
    return ctypes.sizeof(t) == ctypes.sizeof(want) and (t(-1).value < 0) == (want(-1).value < 0)


def test_signatures_match_the_header():
    protos = {}
    for m in re.finditer(r"^([a-z_][\w ]*?\**)\s*\b(gs_\w+)\((.*?)\);", HEADER, re.M | re.S):
        protos[m.group(2)] = (m.group(1).strip(), [a.strip() for a in m.group(3).split(",") if a.strip() != "void"])
    for name, (argtypes, restype, gil) in _ffi.SIGNATURES.items():
        assert name in protos, f"{name} is declared in _ffi but not in include/gostack.h"
        ret, args = protos[name]
        assert len(args) == len(argtypes), f"{name}: {len(argtypes)} argtypes, header has {args}"
        want = C_TYPES.get(ret)
        if want is not None:
            assert same_int_type(restype, want), f"{name}: restype {restype.__name__}, header returns {ret}"
        elif ret == "const char *":
            assert restype is ctypes.c_char_p, name
        else:
            assert ret.endswith("*") and restype is ctypes.c_void_p, f"{name}: header returns {ret}"
        for a, t in zip(args, argtypes):
            ctype = a.rsplit(" ", 1)[0] if "*" not in a else None
            if ctype in C_TYPES:
                assert same_int_type(t, C_TYPES[ctype]), f"{name}: argument {a!r} declared as {t.__name__}"
            elif "*" in a and t is not ctypes.py_object and not getattr(t, "_type_", None):
                assert t is ctypes.c_void_p or t is _ffi.GS_FN, f"{name}: pointer argument {a!r} declared as {t}"
        # Calls that may block or switch release the GIL (ctypes.CDLL); the rest keep it.
        blocking = name in ("gs_py_run", "gs_yield", "gs_sleep", "gs_chan_send", "gs_chan_recv",
                            "gs_chan_recv_timeout", "gs_select", "gs_waitgroup_wait", "gs_mutex_lock",
                            "gs_sema_acquire", "gs_fd_wait", "gs_read", "gs_write")
        assert (gil in (_ffi.RELEASE, _ffi.RELEASE_ERRNO)) == blocking, name


def test_fastcalls_are_the_librarys_builtins():
    # The names are written twice, in _ffi.FASTCALLS and in src/abi/pyfast.rs's table: a name
    # missing on one side would fall back to ctypes in silence (more C stack kept per parked
    # goroutine, slower switches).
    table = _ffi.lib.PY.gs_py_fastcalls
    table.argtypes, table.restype = [], ctypes.py_object
    fast = table()
    assert sorted(fast) == sorted(_ffi.FASTCALLS)
    for name in _ffi.FASTCALLS:
        f = getattr(_ffi.lib, "f_" + name[3:])
        assert type(f).__name__ == "builtin_function_or_method" and f.__name__ == name, name
        # As many arguments as the ctypes function of that name: one more is refused before any
        # call (TypeError from the argument check), which is safe to try for every one.
        with pytest.raises(TypeError):
            f(*([0] * (len(_ffi.SIGNATURES[name][0]) + 1)))


def test_one_handle_base_one_lifetime():
    kinds = [gostack.Chan, gostack.WaitGroup, gostack.Mutex, gostack.Sema]
    for cls in kinds:
        assert issubclass(cls, _ffi.Handle)
        obj = cls()
        assert not obj.freed
        obj.free()
        assert obj.freed
        with pytest.raises(gostack.Freed) as info:
            obj._handle()
        assert isinstance(info.value, ValueError) and isinstance(info.value, gostack.WrongState)
    assert {c._kind for c in kinds} == {"chan", "waitgroup", "mutex", "sema"}


def test_sema(gostack):
    s = gostack.Sema(2)
    assert s.try_acquire() and s.try_acquire() and not s.try_acquire()
    order = []

    def taker(i):
        with s:
            order.append(i)
            gostack.yield_()

    s.release()
    s.release()
    for i in range(5):
        gostack.go(taker, i)
    gostack.run()
    assert sorted(order) == list(range(5))
    with pytest.raises(gostack.InvalidArgument):
        gostack.Sema(-1)
    s.free()


def test_layers_import_one_way():
    """_ffi imports no sibling; _runtime only _ffi; _sync only _ffi and _runtime."""
    allowed = {"_ffi": set(), "_runtime": {"_ffi"}, "_sync": {"_ffi", "_runtime"}}
    for mod, ok in allowed.items():
        tree = ast.parse((PKG / f"{mod}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported |= {node.module} if node.module else {a.name for a in node.names}
        assert imported <= ok, f"{mod} imports {imported - ok}"
