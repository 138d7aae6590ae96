"""Go-style goroutines for Python, on libgostack.so (through ctypes).

>>> import gostack
>>> def worker(n):
...     for i in range(3):
...         print(n, i)
...         gostack.yield_()
>>> for n in range(2):
...     gostack.go(worker, n)
>>> gostack.run()

Each goroutine runs the Python callable under a ``PyThreadState`` of its own; the goroutines of
a thread share one C stack (a switched-out one's live part is copied to the heap, as greenlet
does), or, with :func:`stack_size` or :func:`go_with`'s ``stack_size``, each has a fixed one of
that size (reserved, committed as touched). One goroutine
holds the GIL at a time; switches happen only at ``yield_()``, ``sleep()``, and blocking
channel/mutex/waitgroup/semaphore operations.

What users notice: ``threading.local`` and ``sys.exc_info()`` are per goroutine (they live in the
thread state); ``threading.current_thread()`` is the OS thread that runs the goroutine; a
goroutine starts in a copy of its spawner's ``contextvars`` context and with its spawner's trace
and profile functions.

Errors: C status codes become :class:`Error` subclasses. An exception escaping a goroutine is
reported through :data:`excepthook` (like an uncaught exception in a thread) and the other
goroutines keep running; ``run()`` raises them all, as a ``BaseExceptionGroup``, once every
goroutine has ended. ``KeyboardInterrupt``/``SystemExit`` raised in a goroutine, and Ctrl-C, stop
``run()`` at once (it raises them; the remaining goroutines stay queued for the next ``run()``).

Fork: the child of ``os.fork()`` starts with a fresh runtime (no goroutines; objects of the
parent raise :class:`Stale`). See the README's Python section for the rules in full.

I/O: ``wait_read``/``wait_write`` park a goroutine on a file descriptor; ``sock_recv``,
``sock_sendall``, ``sock_accept``, ``sock_connect``, ``sock_close`` work on ordinary sockets;
``blocking(fn, *args)`` runs a blocking call on a helper thread while the goroutine waits.

Layout: :mod:`gostack._ffi` (library, signatures, codes, errors, handle base) <-
:mod:`gostack._runtime` (goroutines, run, signals, fork) <- :mod:`gostack._sync` (channels,
select, WaitGroup, Mutex, Sema), :mod:`gostack._io` (fd waits, sockets, blocking calls) <- this
module (the public names).
"""

from __future__ import annotations

from . import _ffi
from ._ffi import (
    Busy,
    ChannelClosed,
    Deadlock,
    Error,
    Freed,
    InternalError,
    InvalidArgument,
    NotInGoroutine,
    OutOfMemory,
    Stale,
    Timeout,
    Unavailable,
    WouldBlock,
    WrongState,
)
from ._runtime import (
    DEFAULT_STACK_SIZE,
    RUN_SLICE_SECONDS,
    GoroutineExceptArgs,
    Stats,
    excepthook,
    go,
    go_with,
    goid,
    gosched,
    maxprocs,
    run,
    set_maxprocs,
    sleep,
    stack_size,
    stats,
    systemstack,
    yield_,
)
from ._sync import CLOSED, Chan, Mutex, Sema, WaitGroup, select
from ._io import (
    MAX_BLOCKING_THREADS,
    blocking,
    sock_accept,
    sock_close,
    sock_connect,
    sock_recv,
    sock_sendall,
    wait_read,
    wait_write,
)

__version__ = "0.1.0"

__all__ = [
    "go", "go_with", "run", "yield_", "gosched", "sleep", "systemstack", "stack_size", "stats", "Stats", "goid",
    "set_maxprocs", "maxprocs", "excepthook", "GoroutineExceptArgs", "Chan", "select", "CLOSED", "WaitGroup",
    "Mutex", "Sema", "Error", "InvalidArgument", "OutOfMemory", "NotInGoroutine", "ChannelClosed", "Deadlock",
    "Timeout", "WouldBlock", "Busy", "WrongState", "InternalError", "Unavailable", "Freed", "Stale",
    "library_path", "DEFAULT_STACK_SIZE", "RUN_SLICE_SECONDS", "wait_read", "wait_write", "blocking",
    "sock_recv", "sock_sendall", "sock_accept", "sock_connect", "sock_close", "MAX_BLOCKING_THREADS",
]

#: The library object (every C function, declared; rebound in place in a fork child).
_lib = _ffi.lib
#: Path of the libgostack.so loaded at import (a fork child runs a fresh copy of it).
library_path = str(_lib.path)
