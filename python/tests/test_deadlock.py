"""run() reports goroutines that are all blocked for good (gs_py_run returns GS_EDEADLOCK).

In child interpreters: deadlock detection counts the threads of the process, and a hang must
end in a timeout, not stall the suite."""

import subprocess
import sys

from conftest import child_env

CHILD = r"""
import sys, time, gostack
mode = sys.argv[1]
ch = gostack.Chan()
got = []
def recv():
    got.append(ch.recv())
if mode == "chan":
    for _ in range(3):
        gostack.go(recv)
    done = []
    gostack.go(lambda: done.append(1))  # others finish first; the blocked ones remain
    t0 = time.monotonic()
    try:
        gostack.run()
    except gostack.Deadlock as e:
        assert e.code == -5, e.code
        print("deadlock", round(time.monotonic() - t0, 3), flush=True)
    else:
        print("no deadlock reported"); sys.exit(1)
    assert done == [1] and got == []
    # The program goes on: wake the parked goroutines from outside, run them to the end.
    for i in range(3):
        assert ch.try_send(i)
    gostack.run()
    assert sorted(got) == [0, 1, 2], got
    # And new goroutines run normally afterwards.
    gostack.go(lambda: got.append("again"))
    gostack.run()
    assert got[-1] == "again"
elif mode == "mutex_wg":
    wg = gostack.WaitGroup()
    wg.add(1)
    gostack.go(wg.wait)
    try:
        gostack.run()
    except gostack.Deadlock:
        print("deadlock", flush=True)
    wg.done()
    gostack.run()
elif mode == "sleep":
    # A sleeping goroutine is not a deadlock: the receiver is woken by it.
    def later():
        gostack.sleep(0.2)
        ch.send("late")
    gostack.go(recv)
    gostack.go(later)
    gostack.run()
    assert got == ["late"], got
print("ok", flush=True)
"""


def run_child(mode):
    r = subprocess.run([sys.executable, "-c", CHILD, mode], env=child_env(), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.split("\n")


def test_deadlocked_run_raises_and_program_continues():
    out = run_child("chan")
    assert out[0].startswith("deadlock "), out
    # Reported as soon as the last goroutine parks, not after some slice-long poll.
    # (Measured 0.02-0.06 s; a poll would take its slice every time: the bound leaves room for load.)
    assert float(out[0].split()[1]) < 2.0, out
    assert "ok" in out


def test_waitgroup_deadlock():
    out = run_child("mutex_wg")
    assert out[:2] == ["deadlock", "ok"], out


def test_sleeping_goroutine_is_not_a_deadlock():
    out = run_child("sleep")
    assert out[0] == "ok", out
