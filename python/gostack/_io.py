"""I/O for goroutines (issue #13): waiting for file descriptors (``wait_read``/``wait_write``,
on ``gs_fd_wait``: the goroutine parks, the others run), asyncio-style socket helpers
(``sock_recv``, ``sock_sendall``, ``sock_accept``, ``sock_connect``, ``sock_close``) on ordinary
``socket.socket`` objects, and ``blocking(fn, *args)`` for calls that cannot be made
non-blocking. Imports :mod:`gostack._ffi` and :mod:`gostack._runtime` only.

Outside goroutines (a plain thread, the main program before ``run()``) every call here blocks
the calling thread the ordinary way (``select.poll``, the call itself), so Ctrl-C works there
as usual.

Why ``blocking`` runs ``fn`` on a helper thread (unlike C's ``gs_blocking``, which runs it on the
goroutine's thread and hands the P away): Python goroutines stay on their OS thread (each has a
CPython thread state), so a hand-off would let no other Python goroutine run; on a helper thread
``fn`` runs (the GIL released in its blocking parts, as in any thread) while every goroutine
keeps going (asyncio's ``run_in_executor``). The goroutine waits on an eventfd the helper
signals: an fd wait, so the scheduler never takes it for a deadlock.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import select
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Tuple, TypeVar, Union

from . import _ffi, _runtime
from ._ffi import GS_ECLOSED, GS_EINVAL, GS_ETIMEDOUT, Timeout, fail, lib as _lib, seconds_to_ns

T = TypeVar("T")

POLL_IN = 1
POLL_OUT = 2
_create_buffer = ctypes.create_string_buffer

FdLike = Union[int, Any]


def _fileno(fd: FdLike) -> int:
    n = fd if isinstance(fd, int) else fd.fileno()
    if n < 0:
        raise OSError(_errno.EBADF, "file descriptor is closed")
    return n


def _wait(fd: FdLike, events: int, timeout: Optional[float], what: str) -> None:
    n = _fileno(fd)
    if _lib.f_self() == 0:
        _thread_wait(n, events, timeout, what)
        return
    ns = -1 if timeout is None else seconds_to_ns(timeout, what)
    rc = _lib.f_fd_wait(n, events, ns)
    if rc == 0:
        return
    if rc == GS_ETIMEDOUT:
        raise Timeout(f"{what}: timed out", rc)
    if rc in (GS_ECLOSED, GS_EINVAL):
        raise OSError(_errno.EBADF, f"{what}: fd {n} is closed or not a file descriptor")
    fail(rc, what)


def _thread_wait(fd: int, events: int, timeout: Optional[float], what: str) -> None:
    p = select.poll()
    p.register(fd, (select.POLLIN if events & POLL_IN else 0) | (select.POLLOUT if events & POLL_OUT else 0))
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    ready = p.poll(ms)  # retried on EINTR after the signal handlers ran (PEP 475)
    if not ready:
        raise Timeout(f"{what}: timed out", GS_ETIMEDOUT)
    if ready[0][1] & select.POLLNVAL:
        raise OSError(_errno.EBADF, f"{what}: fd {fd} is not open")


def wait_read(fd: FdLike, timeout: Optional[float] = None) -> None:
    """Parks the calling goroutine until ``fd`` (an int or an object with ``fileno()``) is
    readable, or has an error/hang-up pending; ``TimeoutError`` (:class:`gostack.Timeout`) after
    ``timeout`` seconds; ``OSError(EBADF)`` if it is not open or :func:`sock_close`/
    ``gs_fd_close`` closed it meanwhile. Outside goroutines, blocks the thread."""
    _wait(fd, POLL_IN, timeout, "wait_read")


def wait_write(fd: FdLike, timeout: Optional[float] = None) -> None:
    """As :func:`wait_read`, for writability."""
    _wait(fd, POLL_OUT, timeout, "wait_write")


# ---- sockets ------------------------------------------------------------------------------------


def _prepare(sock: socket.socket) -> None:
    if sock.fileno() < 0:
        raise OSError(_errno.EBADF, "socket is closed")
    if sock.gettimeout() != 0.0:
        sock.setblocking(False)


def sock_recv(sock: socket.socket, n: int, timeout: Optional[float] = None) -> bytes:
    """``sock.recv(n)`` that parks the goroutine until data arrives (b"" at end of stream).
    Makes the socket non-blocking (as asyncio's ``sock_recv`` requires). ``TimeoutError`` after
    ``timeout`` seconds, ``OSError`` for a closed socket or a failed connection."""
    _prepare(sock)
    if timeout is None and _lib.f_self() != 0:
        # One C call (gs_read: recv, park on EAGAIN, retry) instead of an exception and a wait
        # per EAGAIN: 2-3x the round trips per second (docs/PERFORMANCE.md, issue 13).
        buf = _create_buffer(n)
        r = _lib.gs_read(sock.fileno(), buf, n)
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return buf.raw[:r]
    while True:
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        wait_read(sock, timeout)


def sock_sendall(sock: socket.socket, data: bytes, timeout: Optional[float] = None) -> None:
    """Sends all of ``data``, parking the goroutine whenever the socket's buffer is full.
    ``timeout`` bounds each wait for room."""
    _prepare(sock)
    if timeout is None and _lib.f_self() != 0:
        data = bytes(data)
        if _lib.gs_write(sock.fileno(), data, len(data)) < 0:  # writes everything, parks when full
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return
    view = memoryview(data).cast("B")
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            wait_write(sock, timeout)
            continue
        view = view[sent:]


def sock_accept(sock: socket.socket, timeout: Optional[float] = None) -> Tuple[socket.socket, Any]:
    """``sock.accept()`` that parks the goroutine until a connection arrives; the new socket is
    non-blocking. Returns ``(conn, address)``."""
    _prepare(sock)
    while True:
        try:
            conn, addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            wait_read(sock, timeout)
            continue
        conn.setblocking(False)
        return conn, addr


def sock_connect(sock: socket.socket, address: Any, timeout: Optional[float] = None) -> None:
    """``sock.connect(address)`` that parks the goroutine until the connection is established;
    ``OSError`` (``ConnectionRefusedError``, ...) when it fails, ``TimeoutError`` after
    ``timeout`` seconds. The address must be resolved (an IP address; see :func:`blocking`
    for ``socket.getaddrinfo``)."""
    _prepare(sock)
    err = sock.connect_ex(address)
    if err in (0, _errno.EISCONN):
        return
    if err not in (_errno.EINPROGRESS, _errno.EAGAIN, _errno.EINTR, _errno.EALREADY):
        raise OSError(err, os.strerror(err))
    wait_write(sock, timeout)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


def sock_close(sock: Union[socket.socket, int]) -> None:
    """Closes a socket (or fd) after waking every goroutine waiting on it: they get ``OSError``
    (EBADF). A plain ``sock.close()`` does not wake them (they see their timeout): use this
    when goroutines may be waiting on the socket."""
    if isinstance(sock, int):
        fd = sock
    else:
        if sock.fileno() < 0:
            return
        fd = sock.detach()
    rc = _lib.gs_fd_close(fd)
    if rc == GS_EINVAL:
        raise OSError(_errno.EBADF, f"sock_close: fd {fd} is not open")
    if rc:
        fail(rc, "sock_close")


# ---- blocking calls -----------------------------------------------------------------------------

_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()
#: Helper threads for :func:`blocking` (asyncio's default executor size).
MAX_BLOCKING_THREADS = min(32, (os.cpu_count() or 1) + 4)


def _fresh_helper() -> None:
    """A new helper thread has not used gostack: if its ident is that of a dead thread that did
    (idents are reused), forget that thread, or run()'s deadlock rule would take this idle,
    long-lived helper for a possible waker and a deadlocked send from a plain thread would wait
    for ever (seen: test_real_programs after test_io)."""
    _runtime._participants.pop(threading.get_ident(), None)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_BLOCKING_THREADS, thread_name_prefix="gostack-blocking",
                                       initializer=_fresh_helper)
        return _pool


def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Runs ``fn(*args)``, a call that may block (``socket.getaddrinfo``, a file read, a database
    client, ``time.sleep``), on a helper thread while the calling goroutine parks, and returns
    its result (or raises its exception). Every other goroutine keeps running meanwhile. Up to
    :data:`MAX_BLOCKING_THREADS` calls run at once; more wait their turn. Outside goroutines, a
    plain call. Ctrl-C does not stop ``fn`` (a thread cannot be interrupted); ``run()`` returns
    with ``KeyboardInterrupt`` at once and the goroutine gets the result in a later ``run()``."""
    if _lib.f_self() == 0:
        return fn(*args)
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) if hasattr(os, "eventfd") else None
    if efd is None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    else:
        r = w = efd

    def done(_f: Any) -> None:
        os.write(w, (1).to_bytes(8, "little"))

    try:
        fut = _executor().submit(fn, *args)
        fut.add_done_callback(done)
        while not fut.done():
            wait_read(r)
        return fut.result()
    finally:
        os.close(r)
        if w != r:
            os.close(w)


@_ffi.on_reload
def _after_fork_in_child() -> None:
    """The parent's helper threads do not exist in a fork child."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()
