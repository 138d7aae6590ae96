"""``python -m gostack``: prints the versions and where the library was found, then runs a short
self-check of an installed package (goroutines, channels, select, sync, sleep) and exits non-zero
when any result is wrong. ``python -m gostack --version`` prints the version only.

The check runs in a second or two; a watchdog ends it with a traceback and exit status 1 if it
has not finished in TIME_LIMIT seconds (a hang is a failure too).
"""

from __future__ import annotations

import faulthandler
import sys
import time
from typing import Callable, List, Tuple

#: Seconds the whole self-check may take before the watchdog fails it.
TIME_LIMIT = 10.0


def _spawn_and_yield(gostack) -> str:
    """1,000 goroutines take 3 turns each: every turn is counted, and the turns interleave."""
    n, rounds = 1000, 3
    order: List[int] = []

    def worker(i: int) -> None:
        for _ in range(rounds):
            order.append(i)
            gostack.yield_()

    for i in range(n):
        gostack.go(worker, i)
    gostack.run()
    assert len(order) == n * rounds, f"{len(order)} turns, expected {n * rounds}"
    assert sorted(set(order)) == list(range(n)), "some goroutine never ran"
    assert order[:n] != [0] * n and len(set(order[:n])) > 1, "goroutines did not take turns"
    return f"{n} goroutines x {rounds} turns"


def _pipeline(gostack) -> str:
    """A three-stage pipeline over an unbuffered and a buffered channel: the sum of squares."""
    n = 2000
    numbers, squares = gostack.Chan(), gostack.Chan(16)
    total: List[int] = []

    def produce() -> None:
        with numbers:  # closes it at the end, as Go's `defer close(ch)`
            for i in range(n):
                numbers.send(i)

    def square() -> None:
        with squares:
            for x in numbers:
                squares.send(x * x)

    gostack.go(produce)
    gostack.go(square)
    gostack.go(lambda: total.append(sum(squares)))
    gostack.run()
    expected = sum(i * i for i in range(n))
    assert total == [expected], f"pipeline summed {total}, expected [{expected}]"
    return f"{n} values through 2 channels"


def _select_and_sleep(gostack) -> str:
    """select picks the ready case, honours default, and a sleeping sender is waited for."""
    a, b = gostack.Chan(1), gostack.Chan(1)
    seen: List[Tuple[int, object]] = []

    def chooser() -> None:
        seen.append(gostack.select([a, b], default=True))  # nothing ready yet
        b.send("b")
        seen.append(gostack.select([a, b]))
        seen.append(gostack.select([a, b]))  # waits for the sleeper below

    def sleeper() -> None:
        gostack.sleep(0.02)
        a.send("a")

    gostack.go(chooser)
    gostack.go(sleeper)
    start = time.monotonic()
    gostack.run()
    took = time.monotonic() - start
    assert seen == [(-1, None), (1, "b"), (0, "a")], f"select returned {seen}"
    assert took >= 0.015, f"sleep(0.02) returned after {took:.3f} s"
    return "default, ready case, wait for a sleeper"


def _waitgroup_and_mutex(gostack) -> str:
    """100 goroutines add 10 each under a Mutex held across a yield; a WaitGroup waits for them."""
    n, each = 100, 10
    mu, wg = gostack.Mutex(), gostack.WaitGroup()
    counter = [0]
    done: List[int] = []

    def adder() -> None:
        for _ in range(each):
            with mu:
                v = counter[0]
                gostack.yield_()  # another goroutine runs here; the mutex keeps it out
                counter[0] = v + 1
        wg.done()

    def waiter() -> None:
        wg.wait()
        done.append(counter[0])

    wg.add(n)
    gostack.go(waiter)
    for _ in range(n):
        gostack.go(adder)
    gostack.run()
    assert done == [n * each], f"WaitGroup released the waiter at {done}, expected [{n * each}]"
    return f"{n} goroutines, {n * each} increments"


CHECKS: List[Callable] = [_spawn_and_yield, _pipeline, _select_and_sleep, _waitgroup_and_mutex]


def main(argv: List[str]) -> int:
    if argv[1:] in (["--version"], ["-V"]):
        import gostack

        print(gostack.__version__)
        return 0
    if argv[1:]:
        print("usage: python -m gostack [--version]", file=sys.stderr)
        return 2
    # (A library that cannot be loaded has already stopped `python -m gostack` with the loader's
    # OSError, which lists the likely causes: runpy imports the package before this module.)
    import gostack

    faulthandler.dump_traceback_later(TIME_LIMIT, exit=True)
    print(f"gostack {gostack.__version__} (library {gostack._ffi.lib.version} at {gostack.library_path})")
    print(f"Python {sys.version.split()[0]}, {gostack.maxprocs()} P(s)")
    failed = 0
    start = time.monotonic()
    for check in CHECKS:
        name = check.__name__.lstrip("_").replace("_", " ")
        try:
            what = check(gostack)
        except BaseException as e:  # noqa: BLE001 - every failure is reported, then the next check runs
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
        else:
            print(f"ok   {name}: {what}")
    faulthandler.cancel_dump_traceback_later()
    took = time.monotonic() - start
    print(f"self-check: {len(CHECKS) - failed} passed, {failed} failed ({took:.2f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
