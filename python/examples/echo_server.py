"""An echo server with a goroutine per connection, and its clients, in one process (issue #13).

The server accepts on 127.0.0.1 (a free port) and echoes each connection in a goroutine of its
own; 50 client goroutines each send 100 messages and check every byte that comes back. Blocking
calls are ordinary sockets through gostack's helpers (sock_accept, sock_recv, sock_sendall,
sock_connect): each parks its goroutine while the others run. The name lookup goes through
gostack.blocking (a helper thread). Stops by itself.

    python3 python/examples/echo_server.py
"""

import socket
import time

import gostack

CLIENTS = 50
MESSAGES = 100


def serve(conn: socket.socket) -> None:
    with conn:
        while True:
            data = gostack.sock_recv(conn, 4096)
            if not data:
                return
            gostack.sock_sendall(conn, data)


def server(listener: socket.socket) -> None:
    for _ in range(CLIENTS):
        conn, _addr = gostack.sock_accept(listener)
        gostack.go(serve, conn)
    gostack.sock_close(listener)


def client(n: int, port: int, done: gostack.Chan) -> None:
    # getaddrinfo may block (DNS): a helper thread runs it while the goroutines go on.
    addr = gostack.blocking(socket.getaddrinfo, "localhost", port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        gostack.sock_connect(s, addr)
        for i in range(MESSAGES):
            msg = f"client {n} message {i}".encode().ljust(64, b".")
            gostack.sock_sendall(s, msg)
            got = b""
            while len(got) < len(msg):
                chunk = gostack.sock_recv(s, len(msg) - len(got), timeout=10)
                assert chunk, "connection closed early"
                got += chunk
            assert got == msg, (got, msg)
    done.send(n)


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    port = listener.getsockname()[1]
    done = gostack.Chan(CLIENTS)
    t0 = time.perf_counter()
    gostack.go(server, listener)
    for n in range(CLIENTS):
        gostack.go(client, n, port, done)
    gostack.run()
    dt = time.perf_counter() - t0
    assert len(done) == CLIENTS
    print(f"echo: {CLIENTS} connections x {MESSAGES} messages, every byte checked, "
          f"{CLIENTS * MESSAGES / dt:,.0f} round trips/s")


if __name__ == "__main__":
    main()
