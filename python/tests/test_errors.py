"""Exceptions escaping goroutines, loader errors, error classes."""

import os
import subprocess
import sys

import pytest

from conftest import child_env


def test_exception_escaping_goroutine_is_reported_and_raised_by_run(gostack, capsys):
    finished = []

    def bad(n):
        gostack.yield_()
        raise ValueError(f"boom {n}")

    def good():
        for _ in range(5):
            gostack.yield_()
        finished.append(True)

    gostack.go(bad, 1)
    gostack.go(good)
    gostack.go(bad, 2)
    with pytest.raises(BaseExceptionGroup) as info:
        gostack.run()
    assert finished == [True]  # the others kept running
    assert [str(e) for e in info.value.exceptions] == ["boom 1", "boom 2"]
    err = capsys.readouterr().err
    assert err.count("Exception in goroutine") == 2 and "ValueError: boom 1" in err
    gostack.run()  # failures are reported once


def test_excepthook_is_replaceable(gostack):
    seen = []
    old = gostack.excepthook
    gostack.excepthook = seen.append
    try:
        gid = gostack.go(lambda: 1 / 0)
        with pytest.raises(BaseExceptionGroup):
            gostack.run()
    finally:
        gostack.excepthook = old
    assert len(seen) == 1 and seen[0].goroutine == gid and seen[0].exc_type is ZeroDivisionError


def test_system_exit_in_goroutine_stops_run(gostack):
    def quit_():
        raise SystemExit(3)

    gostack.go(quit_)
    with pytest.raises(SystemExit):
        gostack.run()


def test_bad_library_path_gives_helpful_oserror(gostack, monkeypatch):
    from gostack import _ffi

    monkeypatch.setenv("GOSTACK_LIBRARY", "/nonexistent/libgostack.so")
    with pytest.raises(OSError) as info:
        _ffi.load()
    msg = str(info.value)
    assert "/nonexistent/libgostack.so" in msg and "GOSTACK_LIBRARY" in msg and "Likely causes" in msg


def test_not_a_gostack_library_gives_helpful_oserror(gostack, monkeypatch):
    from gostack import _ffi

    monkeypatch.setenv("GOSTACK_LIBRARY", "libc.so.6")
    monkeypatch.setattr(_ffi.Path, "exists", lambda self: True)
    with pytest.raises(OSError, match="not a gostack library|cannot load"):
        _ffi.load()


def test_import_fails_cleanly_in_child_with_bad_path():
    r = subprocess.run([sys.executable, "-c", "import gostack"], env=child_env(GOSTACK_LIBRARY="/no/such.so"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "OSError" in r.stderr and "Likely causes" in r.stderr


def test_error_classes(gostack):
    assert issubclass(gostack.Timeout, gostack.Error) and issubclass(gostack.Timeout, TimeoutError)
    assert issubclass(gostack.Unavailable, NotImplementedError)
    assert gostack.ChannelClosed.code == -4 and gostack.Deadlock.code == -5
