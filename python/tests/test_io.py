"""Issue #13: wait_read/wait_write, the socket helpers, blocking(), and Ctrl-C while every
goroutine waits on I/O."""

import os
import socket
import threading
import time

import pytest

from conftest import interrupt


def test_wait_read_times_out_on_an_idle_pipe(gostack):
    r, w = os.pipe()
    out = []

    def g():
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            gostack.wait_read(r, timeout=0.05)
        out.append(time.monotonic() - t0)
        gostack.wait_write(w, timeout=0)  # an empty pipe is writable
        os.write(w, b"x")
        gostack.wait_read(r, timeout=0)
        out.append(os.read(r, 1))

    gostack.go(g)
    gostack.run()
    assert out[0] >= 0.05 and out[1] == b"x"
    os.close(r)
    os.close(w)


def test_wait_read_parks_only_the_goroutine(gostack):
    r, w = os.pipe()
    order = []

    def reader():
        gostack.wait_read(r)
        order.append(("read", os.read(r, 5)))

    def writer():
        order.append("writer runs while the reader waits")
        gostack.sleep(0.01)
        os.write(w, b"hello")

    gostack.go(reader)
    gostack.go(writer)
    gostack.run()
    assert order == ["writer runs while the reader waits", ("read", b"hello")]
    os.close(r)
    os.close(w)


def test_bad_fds_raise_oserror(gostack):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    errors = []

    def g():
        for call in (lambda: gostack.wait_read(r), lambda: gostack.wait_write(-1)):
            try:
                call()
            except OSError as e:
                errors.append(type(e))

    gostack.go(g)
    gostack.run()
    assert len(errors) == 2


def _listener():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    return ls, ls.getsockname()


def test_echo_with_socket_helpers(gostack):
    ls, addr = _listener()
    n_clients, n_msgs = 20, 50
    done = []

    def serve(conn):
        with conn:
            while data := gostack.sock_recv(conn, 1024):
                gostack.sock_sendall(conn, data)

    def server():
        for _ in range(n_clients):
            conn, _ = gostack.sock_accept(ls)
            assert conn.gettimeout() == 0.0
            gostack.go(serve, conn)
        ls.close()

    def client(i):
        with socket.socket() as s:
            gostack.sock_connect(s, addr)
            for j in range(n_msgs):
                msg = f"{i}:{j}:".encode() * 20
                gostack.sock_sendall(s, msg)
                got = b""
                while len(got) < len(msg):
                    got += gostack.sock_recv(s, len(msg) - len(got), timeout=5)
                assert got == msg
        done.append(i)

    gostack.go(server)
    for i in range(n_clients):
        gostack.go(client, i)
    gostack.run()
    assert sorted(done) == list(range(n_clients))


def test_connect_refused_and_timeouts(gostack):
    # Bound, never listening: a connect is refused, and the port stays ours (a closed one could be
    # taken by another process, or the connecting socket could get it and connect to itself).
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    addr = ls.getsockname()
    out = []

    def g():
        with socket.socket() as s:
            try:
                gostack.sock_connect(s, addr)
            except ConnectionRefusedError:
                out.append("refused")
        a, b = socket.socketpair()
        with a, b:
            try:
                gostack.sock_recv(a, 10, timeout=0.02)
            except TimeoutError:
                out.append("timeout")

    gostack.go(g)
    gostack.run()
    ls.close()
    assert out == ["refused", "timeout"]


def test_sock_close_wakes_a_waiting_goroutine(gostack):
    a, b = socket.socketpair()
    out = []

    def reader():
        try:
            gostack.sock_recv(a, 10)
        except OSError as e:
            out.append(e.errno)

    def closer():
        gostack.sleep(0.01)
        gostack.sock_close(a)
        out.append("closed")

    gostack.go(reader)
    gostack.go(closer)
    gostack.run()
    assert out == ["closed", 9]  # EBADF
    assert a.fileno() == -1
    b.close()
    with pytest.raises(OSError):
        gostack.sock_recv(a, 1)  # closed: OSError, also outside goroutines


def test_blocking_runs_on_a_helper_thread_while_goroutines_run(gostack):
    ticks = []
    result = []
    ticked = threading.Event()

    def slow(x):
        # Returns only once the other goroutine has ticked 10 times: it ran meanwhile (no time
        # bound: a loaded machine gives it fewer ticks per second, not none).
        assert ticked.wait(60)
        return x * 2, threading.current_thread().name

    def caller():
        result.append(gostack.blocking(slow, 21))

    def ticker():
        while not result:
            ticks.append(1)
            if len(ticks) == 10:
                ticked.set()
            gostack.sleep(0.005)

    gostack.go(caller)
    gostack.go(ticker)
    gostack.run()
    assert result[0][0] == 42 and result[0][1].startswith("gostack-blocking")
    assert len(ticks) >= 10  # the other goroutine kept running (no false deadlock either)
    assert gostack.blocking(lambda: 5) == 5  # outside goroutines: a plain call


def test_blocking_raises_fn_exception(gostack):
    out = []

    def boom():
        raise ValueError("from the helper")

    def g():
        try:
            gostack.blocking(boom)
        except ValueError as e:
            out.append(str(e))

    gostack.go(g)
    gostack.run()
    assert out == ["from the helper"]


def test_wait_outside_goroutines_blocks_the_thread(gostack):
    r, w = os.pipe()
    with pytest.raises(TimeoutError):
        gostack.wait_read(r, timeout=0.01)
    os.write(w, b"x")
    gostack.wait_read(r, timeout=1)
    os.close(r)
    os.close(w)


CTRL_C_CHILD = r"""
import os, sys, gostack
r, w = os.pipe()
def waiter():
    gostack.wait_read(r)
for _ in range(5):
    gostack.go(waiter)
gostack.go(lambda: print("ready", flush=True))
try:
    gostack.run()
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    os.write(w, b"x")   # the waiters finish in a later run()
    gostack.run()
    print("resumed", flush=True)
    sys.exit(0)
sys.exit(1)
"""


def test_ctrl_c_while_every_goroutine_waits_on_io():
    r = interrupt(CTRL_C_CHILD, delay=0.2, timeout=10)
    assert r.returncode == 0, r.err
    assert r.out.split() == ["KeyboardInterrupt", "resumed"], r
    assert r.elapsed < 3.0, r.elapsed  # the waiters' fds never become ready: only the signal ends run()
