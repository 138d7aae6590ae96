"""TCP echo over loopback from Python (issue #13): CONNS clients each make ROUNDS round trips of
64 bytes with an echo server in the same process, a goroutine (gostack) or task (asyncio,
uvloop) per connection, all through the same socket calls (sock_accept / sock_connect /
sock_recv / sock_sendall). Prints "raw<TAB>py echo<TAB>round trips per second" per repetition.

    python3 benches/compare/py_echo.py LIB [CONNS=1000] [ROUNDS=200] [REPS=3]
      LIB: gostack | asyncio | uvloop
"""

import socket
import sys
import time

MSG = b"e" * 64


def listener():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    ls.setblocking(False)
    return ls, ls.getsockname()


def nodelay(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def run_gostack(conns, rounds):
    import gostack

    ls, addr = listener()

    def serve(c):
        nodelay(c)
        while True:
            data = gostack.sock_recv(c, 256)
            if not data:
                break
            gostack.sock_sendall(c, data)
        c.close()

    def server():
        for _ in range(conns):
            c, _ = gostack.sock_accept(ls)
            gostack.go(serve, c)

    def client():
        s = socket.socket()
        nodelay(s)
        gostack.sock_connect(s, addr)
        for _ in range(rounds):
            gostack.sock_sendall(s, MSG)
            got = b""
            while len(got) < 64:
                got += gostack.sock_recv(s, 64 - len(got))
            assert got == MSG
        s.close()

    t = time.perf_counter()
    gostack.go(server)
    for _ in range(conns):
        gostack.go(client)
    gostack.run()
    dt = time.perf_counter() - t
    ls.close()
    return conns * rounds / dt


def run_asyncio(conns, rounds, uv=False):
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        ls, addr = listener()

        async def serve(c):
            nodelay(c)
            c.setblocking(False)
            while True:
                data = await loop.sock_recv(c, 256)
                if not data:
                    break
                await loop.sock_sendall(c, data)
            c.close()

        async def server():
            tasks = []
            for _ in range(conns):
                c, _ = await loop.sock_accept(ls)
                tasks.append(asyncio.create_task(serve(c)))
            await asyncio.gather(*tasks)

        async def client():
            s = socket.socket()
            s.setblocking(False)
            nodelay(s)
            await loop.sock_connect(s, addr)
            for _ in range(rounds):
                await loop.sock_sendall(s, MSG)
                got = b""
                while len(got) < 64:
                    got += await loop.sock_recv(s, 64 - len(got))
                assert got == MSG
            s.close()

        t = time.perf_counter()
        srv = asyncio.create_task(server())
        await asyncio.gather(*(client() for _ in range(conns)))
        await srv
        dt = time.perf_counter() - t
        ls.close()
        return conns * rounds / dt

    if uv:
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def main():
    lib = sys.argv[1]
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    fn = {"gostack": run_gostack, "asyncio": run_asyncio, "uvloop": lambda c, r: run_asyncio(c, r, uv=True)}[lib]
    for _ in range(reps):
        print(f"raw\tpy echo\t{fn(conns, rounds):.1f}", flush=True)


if __name__ == "__main__":
    main()
