"""Python goroutines on the copy stack kind (issue 16; src/embed/cpython.rs, "copy-stack
goroutines"): every goroutine of a thread runs on one shared C stack, a switched-out one's live
part kept in a save area, and its thread state is made to lead nowhere into that stack while it
is switched out.

What these tests pin down: the crash that was found (a program exiting with goroutines parked:
sys._current_frames() in gostack's own deadlock rule read another goroutine's frames), and the
other readers of a parked goroutine's thread state and frames: faulthandler, f_back (3.12/3.13
entry frames), tracebacks, threading.local, sqlite3 and ctypes callbacks, Ctrl-C. Parked
goroutines sit in nested evaluation loops (sorted(key=...)) so that their C frames differ from
whatever the next goroutine puts at the same addresses. Programs that could crash run in child
interpreters."""

import ctypes
import inspect
import subprocess
import sys

import pytest

from conftest import child_env, interrupt

GS_STACK_FIXED, GS_STACK_COPY = 1, 2


def nested(depth, park):
    """Parks through `depth` nested evaluation loops (each sorted(key=...) is a C call back into
    Python); the children get the same function (PRELUDE)."""
    if depth == 0:
        return park()
    out = []
    sorted([1, 2], key=lambda x: (out.append(nested(depth - 1, park)), x)[1] if x == 1 else x)
    return out[0]


# Shared by the children: gostack, the stack kind of the calling goroutine, and a goroutine body
# that parks `depth` evaluation loops deep (each sorted(key=...) is a C call back into Python).
PRELUDE = r"""
import ctypes, faulthandler, io, sys, traceback, gostack
class _Info(ctypes.Structure):
    _fields_ = [("lo", ctypes.c_size_t), ("hi", ctypes.c_size_t), ("size", ctypes.c_size_t),
                ("used", ctypes.c_size_t), ("kind", ctypes.c_uint32), ("grows", ctypes.c_uint64),
                ("shrinks", ctypes.c_uint64)]
_lib = ctypes.CDLL(gostack.library_path)
def kind():
    i = _Info()
    assert _lib.gs_get_stack_info(ctypes.byref(i)) == 0
    return i.kind
"""
PRELUDE += inspect.getsource(nested)


def run_child(body, *args, env_extra=None, timeout=60):
    # The copy kind unless a test says otherwise (the suite may run with GOSTACK_PY_STACK=fixed).
    env = child_env(**{"GOSTACK_PY_STACK": "copy", **(env_extra or {})})
    r = subprocess.run([sys.executable, "-c", PRELUDE + body, *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    return r


def kind_of_goroutines(env_extra=None, go="gostack.go(lambda: kinds.append(kind()))"):
    r = run_child(f"kinds = []\n{go}\ngostack.run()\nprint(kinds[0])", env_extra=env_extra)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def test_python_goroutines_run_on_the_copy_kind():
    assert kind_of_goroutines() == GS_STACK_COPY
    # An explicit stack size is a FIXED stack of that size; GOSTACK_PY_STACK=fixed forces FIXED.
    assert kind_of_goroutines(go="gostack.go_with(lambda: kinds.append(kind()), stack_size=1 << 20)") == GS_STACK_FIXED
    assert kind_of_goroutines(env_extra={"GOSTACK_PY_STACK": "fixed"}) == GS_STACK_FIXED


EXIT_PARKED = r"""
ch = gostack.Chan()
for d in range(6):
    gostack.go(nested, d, ch.recv)
gostack.go(nested, 3, lambda: gostack.sleep(3600))
try:
    gostack.run()
except gostack.Deadlock:
    print("deadlock", flush=True)
# The goroutines stay parked to the end: the deadlock rule above, this and finalization walk
# every thread state, theirs included.
frames = sys._current_frames()
print("frames", len(frames), flush=True)
"""


@pytest.mark.parametrize("kind", ["copy", "fixed"])
def test_program_exits_with_goroutines_parked(kind):
    r = run_child(EXIT_PARKED.replace("gostack.sleep(3600)", "ch.recv()"), env_extra={"GOSTACK_PY_STACK": kind})
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.split("\n")[0] == "deadlock", r.stdout
    # And with a sleeper left (run() does not return: it is interrupted by the program's end).
    r = run_child(EXIT_PARKED.replace("gostack.run()", "gostack.go(lambda: sys.exit(0)); gostack.run()"),
                  env_extra={"GOSTACK_PY_STACK": kind})
    assert r.returncode == 0, (r.stdout, r.stderr)


INSPECT_PARKED = r"""
import tempfile
ch = gostack.Chan()
def parked_here():
    ch.recv()
names = set()
def inspector():
    gostack.yield_()
    # Every parked goroutine sits in nested evaluation loops; walk everything that is visible.
    for ident, f in sys._current_frames().items():
        names.update(fs.name for fs in traceback.extract_stack(f))
    with tempfile.TemporaryFile("w+") as out:
        faulthandler.dump_traceback(file=out, all_threads=True)
        out.seek(0)
        dump = out.read()
    print("dumped", dump.count("parked_here"), "kind", kind(), flush=True)
    for _ in range(8):
        ch.send(None)
for d in range(8):
    gostack.go(nested, d % 4, parked_here)
gostack.go(inspector)
gostack.run()
"""


def test_current_frames_and_faulthandler_while_goroutines_are_parked():
    r = run_child(INSPECT_PARKED + "\nprint('inspector ran', flush=True)")
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.split("\n")
    # faulthandler lists the parked goroutines' thread states with their whole stacks.
    assert lines[0].startswith("dumped ") and int(lines[0].split()[1]) >= 8, r.stdout
    assert lines[0].endswith(f"kind {GS_STACK_COPY}"), r.stdout
    assert "inspector ran" in r.stdout


FOREIGN_FRAME = r"""
ch = gostack.Chan(1)
done = gostack.Chan()
def inner():
    ch.send(sys._getframe())
    done.recv()
def a():
    nested(2, inner)
def b():
    f = ch.recv()
    # Deep C frames of our own where a's entry frames were on the shared stack.
    print([fs.name for fs in traceback.extract_stack(nested(3, lambda: f))], flush=True)
    done.send(1)
gostack.go(a)
gostack.go(b)
gostack.run()
"""


def test_f_back_of_a_parked_goroutines_frame():
    """3.12/3.13: each evaluation loop's entry frame is a C local on the shared stack; walking
    f_back past it from another goroutine read that goroutine's own frames (seen) or garbage."""
    r = run_child(FOREIGN_FRAME)
    assert r.returncode == 0, (r.stdout, r.stderr)
    names = eval(r.stdout.strip())
    assert names == ["_goroutine", "a", "nested", "<lambda>", "nested", "<lambda>", "nested", "inner"], names


def test_exceptions_and_tracebacks_cross_a_park(gostack):
    ch = gostack.Chan(1)
    seen = []

    def fail_deep():
        raise ValueError("deep")

    def raiser():
        try:
            nested(3, fail_deep)
        except ValueError as e:
            ch.send(e)
            # Parked inside the except block: the traceback's frames are live, this goroutine's C
            # frames are in its save area while others run.
            for _ in range(5):
                gostack.yield_()
            seen.append(("own", sys.exc_info()[0], "".join(__import__("traceback").format_exc())))

    def reader():
        e = ch.recv()
        import traceback

        seen.append(("other", "".join(traceback.format_exception(e))))

    def noise():
        for _ in range(5):
            nested(4, gostack.yield_)

    gostack.go(raiser)
    gostack.go(noise)
    gostack.go(reader)
    gostack.run()
    own = [s for s in seen if s[0] == "own"][0]
    other = [s for s in seen if s[0] == "other"][0]
    assert own[1] is ValueError
    for text in (own[2], other[1]):
        assert "fail_deep" in text and "ValueError: deep" in text and text.count("in nested\n") == 4, text


def test_threading_local_sqlite3_and_ctypes_callbacks_on_the_copy_kind(gostack):
    import sqlite3
    import threading

    local = threading.local()
    libc = ctypes.CDLL(None)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    libc.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, CMP]
    results = {}

    def worker(i):
        local.value = i
        db = sqlite3.connect(":memory:")

        def f(x):
            gostack.yield_()  # parks inside sqlite3, inside Python, inside a goroutine
            return x * 2 + local.value

        db.create_function("f", 1, f)
        got_sql = db.execute("select f(?)", (10,)).fetchone()[0]

        def cmp(a, b):
            gostack.yield_()  # parks inside a ctypes callback
            x = ctypes.cast(a, ctypes.POINTER(ctypes.c_int))[0]
            y = ctypes.cast(b, ctypes.POINTER(ctypes.c_int))[0]
            return (x > y) - (x < y)

        arr = (ctypes.c_int * 5)(5, 3, i, 1, 4)
        libc.qsort(arr, 5, ctypes.sizeof(ctypes.c_int), CMP(cmp))
        results[i] = (local.value, got_sql, list(arr))

    for i in range(12):
        gostack.go(nested, i % 3, lambda i=i: worker(i))
    gostack.run()
    for i in range(12):
        assert results[i] == (i, 20 + i, sorted([5, 3, i, 1, 4])), results[i]


CTRL_C = r"""
def parked():
    nested(3, lambda: gostack.sleep(3600))
for _ in range(20):
    gostack.go(parked)
gostack.go(lambda: print("ready", flush=True))
try:
    gostack.run()
except KeyboardInterrupt:
    print("KeyboardInterrupt", len(sys._current_frames()), flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.exit(0)
sys.exit(1)
"""


def test_ctrl_c_with_goroutines_parked_on_the_copy_kind():
    rc, out, err, _ = interrupt(PRELUDE + CTRL_C, env=child_env(GOSTACK_PY_STACK="copy"), delay=0.1, timeout=30)
    assert rc == 0, (out, err)
    assert out.startswith("KeyboardInterrupt"), out
    assert err.count("in parked") == 20, err


def test_copy_goroutines_stay_on_their_thread_at_two_ps():
    # At 2 Ps the thread in run() leaves the scheduler at the end of every slice; goroutines
    # pinned to it used to lose their pin then and resume on the other thread while their bytes
    # stayed on this thread's slots (two threads on one slot: a fatal error or a corrupted
    # frame). A copy-stack goroutine keeps its pin and waits for its thread (p.rs keeps_pin).
    # Each goroutine does some work between yields so that slices end while goroutines are
    # queued; every frame's list is checked on the way back up.
    body = r"""
import threading
moves = 0
def rec(d, rounds):
    x = [d] * 8
    if d:
        rec(d - 1, rounds)
    else:
        for _ in range(rounds):
            sum(range(300))
            gostack.yield_()
    assert x == [d] * 8
def work(i):
    global moves
    t = threading.get_ident()
    for k in range(100):
        rec(i % 7, 10)
        if threading.get_ident() != t:
            moves += 1
            t = threading.get_ident()
    assert kind() == 2
for i in range(32):
    gostack.go(work, i)
gostack.run()
print(moves)
"""
    r = run_child(body, env_extra={"GOSTACK_MAXPROCS": "2"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == 0
