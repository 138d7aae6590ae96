"""Python code inside goroutines: switching, per-goroutine interpreter state, extensions."""

import ctypes
import functools
import gc
import sqlite3
import sys
import threading

import pytest


def test_pingpong_10000_goroutines_through_yields(gostack):
    pairs = 5000
    rounds = 10
    boxes = [[0] for _ in range(pairs)]
    done = []

    def player(box, parity):
        for _ in range(rounds):
            while box[0] % 2 != parity:
                gostack.yield_()
            box[0] += 1
        done.append(parity)

    for box in boxes:
        gostack.go(player, box, 0)
        gostack.go(player, box, 1)
    gostack.run()
    assert len(done) == 2 * pairs
    assert all(box[0] == 2 * rounds for box in boxes)
    assert gostack.stats().goroutines_live == 0


def test_go_passes_args_and_kwargs_and_returns_ids(gostack):
    seen = []
    a = gostack.go(lambda x, y=0: seen.append((x, y)), 1, y=2)
    b = gostack.go(seen.append, 3)
    assert 0 < a < b
    gostack.run()
    assert seen == [(1, 2), 3]


def test_goid_inside_and_outside(gostack):
    ids = []
    gid = gostack.go(lambda: ids.append(gostack.goid()))
    gostack.run()
    assert ids == [gid]
    assert gostack.goid() == 0


def test_exceptions_and_exc_info_survive_yields(gostack):
    results = {}

    def worker(n):
        try:
            raise KeyError(n)
        except KeyError:
            for _ in range(5):
                gostack.yield_()
                assert sys.exc_info()[1].args == (n,)
            try:
                raise ValueError(n) from None
            except ValueError as inner:
                gostack.yield_()
                assert sys.exc_info()[1] is inner
            gostack.yield_()
            assert sys.exc_info()[1].args == (n,)
        assert sys.exc_info() == (None, None, None)
        results[n] = True

    for n in range(50):
        gostack.go(worker, n)
    gostack.run()
    assert len(results) == 50


def test_threading_local_is_per_goroutine(gostack):
    local = threading.local()
    local.value = "main"
    seen = []

    def worker(n):
        assert not hasattr(local, "value")
        local.value = n
        for _ in range(3):
            gostack.yield_()
            assert local.value == n
        seen.append(n)

    for n in range(20):
        gostack.go(worker, n)
    gostack.run()
    assert sorted(seen) == list(range(20))
    assert local.value == "main"


def test_generators_suspended_inside_goroutines(gostack):
    out = {}

    def gen(n):
        for i in range(4):
            gostack.yield_()  # switch goroutines inside the generator frame
            yield n * 100 + i

    def worker(n):
        g = gen(n)
        got = []
        for v in g:
            got.append(v)
            gostack.yield_()  # and while the generator is suspended
        out[n] = got

    for n in range(30):
        gostack.go(worker, n)
    gostack.run()
    assert out == {n: [n * 100 + i for i in range(4)] for n in range(30)}


def test_gc_collect_inside_goroutines(gostack):
    count = []

    class Node:
        def __init__(self):
            self.me = self

    def worker():
        for _ in range(3):
            Node()
            gc.collect()
            gostack.yield_()
        count.append(1)

    for _ in range(20):
        gostack.go(worker)
    gostack.run()
    assert len(count) == 20


def test_sqlite3_user_function_that_yields(gostack):
    totals = {}

    def worker(n):
        db = sqlite3.connect(":memory:")

        def twice(x):
            gostack.yield_()  # called by sqlite3 through PyGILState_Ensure, inside the goroutine
            return 2 * x

        db.create_function("twice", 1, twice)
        db.execute("create table t(x)")
        db.executemany("insert into t values (?)", [(i,) for i in range(10)])
        total = 0
        for (v,) in db.execute("select twice(x) from t"):
            total += v
            gostack.yield_()
        db.close()
        totals[n] = total

    for n in range(10):
        gostack.go(worker, n)
    gostack.run()
    assert totals == {n: 90 for n in range(10)}


def test_ctypes_callback_that_yields(gostack):
    libc = ctypes.CDLL(None)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    libc.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, CMP]
    libc.qsort.restype = None
    out = {}

    def worker(n):
        calls = []

        def cmp(a, b):
            calls.append(1)
            gostack.yield_()
            return a[0] - b[0]

        arr = (ctypes.c_int * 8)(*[(i * 5 + n) % 8 for i in range(8)])
        libc.qsort(arr, 8, ctypes.sizeof(ctypes.c_int), CMP(cmp))
        out[n] = (list(arr), len(calls) > 0)

    for n in range(8):
        gostack.go(worker, n)
    gostack.run()
    assert out == {n: (list(range(8)), True) for n in range(8)}


def test_python_c_python_recursion_depth_500(gostack):
    depth_reached = []
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:

        def down(n):
            if n == 0:
                if gostack.goid():
                    gostack.yield_()
                    depth_reached.append(True)
                return 0
            # sorted() is C: every level is Python -> C -> Python.
            return sorted([n], key=lambda x: down(n - 1))[0]

        depth = 500
        try:
            down(depth)
        except RecursionError:  # CPython 3.12's fixed C recursion limit (1500), on any thread
            depth = 300

        def cmp_down(n):
            if n == 0:
                gostack.yield_()
                return 0
            key = functools.cmp_to_key(lambda a, b: cmp_down(n - 1) or (a > b) - (a < b))
            return sorted([2, 1], key=key)[0]

        gostack.go(down, depth)
        gostack.go(down, depth)
        gostack.go(cmp_down, 200)
        gostack.run()
    finally:
        sys.setrecursionlimit(old)
    assert depth_reached == [True, True]


def test_nested_go_from_goroutines(gostack):
    seen = []

    def child(n):
        gostack.yield_()
        seen.append(n)

    def parent():
        for n in range(10):
            gostack.go(child, n)
        gostack.yield_()

    gostack.go(parent)
    gostack.run()
    assert sorted(seen) == list(range(10))


def test_python_threads_spawn_goroutines(gostack):
    seen = []
    lock = threading.Lock()

    def goroutine(t, i):
        gostack.yield_()
        with lock:
            seen.append((t, i))

    def spawner(t):
        for i in range(100):
            gostack.go(goroutine, t, i)

    threads = [threading.Thread(target=spawner, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    gostack.run()
    assert sorted(seen) == [(t, i) for t in range(4) for i in range(100)]


def test_sleep_orders_by_deadline(gostack):
    order = []

    def sleeper(n, seconds):
        gostack.sleep(seconds)
        order.append(n)

    gostack.go(sleeper, "slow", 0.5)  # spawned first, due 0.49 s later: room for a loaded machine
    gostack.go(sleeper, "fast", 0.01)
    gostack.run()
    assert order == ["fast", "slow"]


def test_systemstack_returns_value_and_refuses_switches(gostack):
    out = []

    def worker():
        out.append(gostack.systemstack(lambda: sum(range(10))))

        def switches():
            gostack.yield_()

        with pytest.raises(gostack.WrongState):
            gostack.systemstack(switches)

    gostack.go(worker)
    gostack.run()
    assert out == [45]
    assert gostack.systemstack(lambda: 7) == 7


def test_yield_and_run_misuse(gostack):
    with pytest.raises(gostack.NotInGoroutine):
        gostack.yield_()
    errs = []

    def nested_run():
        try:
            gostack.run()
        except gostack.WrongState as e:
            errs.append(e)

    gostack.go(nested_run)
    gostack.run()
    assert len(errs) == 1 and errs[0].code == -9


def test_stats_and_maxprocs(gostack):
    s = gostack.stats()
    assert s.maxprocs >= 1 and s.goroutines_live == 0
    assert gostack.maxprocs() >= 1


def test_python_threads_spawn_while_run_is_running(gostack):
    seen = []
    spawned = threading.Event()

    def goroutine(t, i):
        gostack.yield_()
        seen.append((t, i))

    def waiter():
        while not spawned.is_set():  # keeps run() busy while the threads spawn
            gostack.sleep(0.001)

    def spawner(t):
        for i in range(200):
            gostack.go(goroutine, t, i)

    gostack.go(waiter)
    threads = [threading.Thread(target=spawner, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()

    def join_all():
        for th in threads:
            th.join()
        spawned.set()

    joiner = threading.Thread(target=join_all)
    joiner.start()
    gostack.run()
    joiner.join()
    gostack.run()  # anything spawned after the waiter saw the event
    assert sorted(seen) == [(t, i) for t in range(4) for i in range(200)]
