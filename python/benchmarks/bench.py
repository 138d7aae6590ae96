"""Python benchmarks: gostack beside greenlet and asyncio, in one run; prints medians.

    python3 python/benchmarks/bench.py          # from the repository root, after cargo build --release

Figures (same machine, same run):
  yield round trip   A switches to B and B back to A (two switches), per round trip
  spawn              start a goroutine/greenlet/task running an empty function, run it to the end
  parked memory      RSS growth per goroutine parked in sleep (greenlet: suspended in switch;
                     asyncio: task awaiting a future)
  channel ping-pong  send + receive back over two unbuffered channels (if gs_chan_* exist)
"""

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import gostack  # noqa: E402

try:
    import greenlet
except ImportError:  # pip install -r python/requirements-bench.txt
    greenlet = None

REPEAT = 7


def median_ns(fn, n):
    """Median over REPEAT runs of fn(n)'s seconds, per operation, in ns."""
    return statistics.median(fn(n) for _ in range(REPEAT)) / n * 1e9


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---- yield round trip ------------------------------------------------------------------------


def _yield_pair(n, y):
    """Two goroutines calling ``y()`` n times each; seconds from the first call to the last."""
    t = [0.0, 0.0]

    def a():
        t[0] = time.perf_counter()
        for _ in range(n):
            y()

    def b():
        for _ in range(n):
            y()
        t[1] = time.perf_counter()

    gostack.go(a)
    gostack.go(b)
    gostack.run()
    return t[1] - t[0]


def gs_yield(n):
    return _yield_pair(n, gostack.yield_)


def gs_yield_raw(n):
    """Same, calling the ctypes function directly (no Python wrapper, no error check)."""
    return _yield_pair(n, gostack._lib.gs_yield)


def gl_yield(n):
    main = greenlet.getcurrent()

    def b():
        while True:
            main.switch()

    g = greenlet.greenlet(b)
    t0 = time.perf_counter()
    for _ in range(n):
        g.switch()
    return time.perf_counter() - t0


def aio_yield(n):
    async def worker():
        for _ in range(n):
            await asyncio.sleep(0)

    async def main():
        t0 = time.perf_counter()
        await asyncio.gather(worker(), worker())
        return time.perf_counter() - t0

    return asyncio.run(main())


def bare_ctypes_call(n):
    f = gostack._lib.gs_yield  # outside a goroutine: returns GS_ENOTGOROUTINE at once
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return time.perf_counter() - t0


# ---- spawn -------------------------------------------------------------------------------------


def nothing():
    pass


def gs_spawn(n):
    go = gostack.go
    t0 = time.perf_counter()
    for _ in range(n):
        go(nothing)
    gostack.run()
    return time.perf_counter() - t0


def gl_spawn(n):
    G = greenlet.greenlet
    t0 = time.perf_counter()
    for _ in range(n):
        G(nothing).switch()
    return time.perf_counter() - t0


def aio_spawn(n):
    async def main():
        t0 = time.perf_counter()
        tasks = [asyncio.ensure_future(asyncio.sleep(0)) for _ in range(n)]
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0

    return asyncio.run(main())


def gl_spawn_without_gostack(n):
    """gl_spawn's median in a fresh interpreter that never imported gostack.

    gostack wraps CPython's arena allocator with a cache of 16 KiB frame chunks
    (src/embed/cpython.rs); greenlets take their chunks from the same allocator, so in this
    process greenlet spawns get faster too (~10x measured) once gostack ran a goroutine.
    """
    code = f"""
import statistics, time, greenlet
def nothing():
    pass
def once():
    t0 = time.perf_counter()
    for _ in range({n}):
        greenlet.greenlet(nothing).switch()
    return time.perf_counter() - t0
print(statistics.median(once() for _ in range({REPEAT})) / {n} * 1e9)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


# ---- memory per parked -------------------------------------------------------------------------


def gs_parked(n):
    out = []

    def parked():
        gostack.sleep(0.5)

    def measure():
        out.append(rss())

    gc.collect()
    before = rss()
    for _ in range(n):
        gostack.go(parked)
    gostack.go(measure)  # FIFO: runs after every goroutine has parked
    gostack.run()
    return (out[0] - before) / n


def gl_parked(n):
    main = greenlet.getcurrent()
    gc.collect()
    before = rss()
    gs = [greenlet.greenlet(lambda: main.switch()) for _ in range(n)]
    for g in gs:
        g.switch()
    after = rss()
    for g in gs:
        g.switch()
    return (after - before) / n


def aio_parked(n):
    async def main():
        gc.collect()
        before = rss()
        fut = asyncio.get_running_loop().create_future()

        async def parked():
            await fut

        tasks = [asyncio.ensure_future(parked()) for _ in range(n)]
        await asyncio.sleep(0)
        after = rss()
        fut.set_result(None)
        await asyncio.gather(*tasks)
        return (after - before) / n

    return asyncio.run(main())


# ---- channels ----------------------------------------------------------------------------------


def gs_chan_pingpong(n):
    a, b = gostack.Chan(), gostack.Chan()
    t = [0.0, 0.0]

    def ping():
        t[0] = time.perf_counter()
        for i in range(n):
            a.send(i)
            b.recv()
        t[1] = time.perf_counter()

    def pong():
        for _ in range(n):
            b.send(a.recv())

    gostack.go(ping)
    gostack.go(pong)
    gostack.run()
    a.free()
    b.free()
    return t[1] - t[0]


def aio_queue_pingpong(n):
    async def main():
        a, b = asyncio.Queue(1), asyncio.Queue(1)

        async def pong():
            for _ in range(n):
                await b.put(await a.get())

        task = asyncio.ensure_future(pong())
        t0 = time.perf_counter()
        for i in range(n):
            await a.put(i)
            await b.get()
        dt = time.perf_counter() - t0
        await task
        return dt

    return asyncio.run(main())


def row(name, values, unit):
    cells = "".join(f"{v:>14.0f}" if v is not None else f"{'n/a':>14}" for v in values)
    print(f"{name:<28}{cells}  {unit}")


def main():
    print(f"Python {sys.version.split()[0]}, gostack {gostack._lib.version} ({gostack.library_path}), "
          f"greenlet {greenlet.__version__ if greenlet else 'not installed'}; medians of {REPEAT}")
    print(f"{'':<28}{'gostack':>14}{'greenlet':>14}{'asyncio':>14}")
    gl = greenlet is not None
    row("yield round trip", [median_ns(gs_yield, 100_000), median_ns(gl_yield, 100_000) if gl else None,
                             median_ns(aio_yield, 50_000)], "ns")
    row("  gs_yield unwrapped", [median_ns(gs_yield_raw, 100_000), None, None], "ns")
    row("  bare ctypes call", [median_ns(bare_ctypes_call, 100_000), None, None], "ns")
    row("spawn + run to end", [median_ns(gs_spawn, 20_000), median_ns(gl_spawn, 20_000) if gl else None,
                               median_ns(aio_spawn, 20_000)], "ns")
    if gl:
        row("  greenlet without gostack", [None, gl_spawn_without_gostack(20_000), None], "ns (fresh process)")
    n = 10_000
    row("memory per parked", [statistics.median(gs_parked(n) for _ in range(3)),
                              statistics.median(gl_parked(n) for _ in range(3)) if gl else None,
                              statistics.median(aio_parked(n) for _ in range(3))], "bytes")
    if gostack._lib.gs_chan_new is not None:
        row("channel ping-pong", [median_ns(gs_chan_pingpong, 50_000), None, median_ns(aio_queue_pingpong, 50_000)],
            "ns")
    else:
        row("channel ping-pong", [None, None, median_ns(aio_queue_pingpong, 50_000)],
            "ns (gs_chan_* not in this library)")


if __name__ == "__main__":
    main()
