"""README's Python example: four goroutines taking turns, then two talking over a channel.

Run: python python/examples/hello.py (with gostack installed, or from a checkout after
`cargo build --release`: PYTHONPATH=python python3 python/examples/hello.py).
"""

import gostack


def worker(n):
    for i in range(3):
        print("goroutine", gostack.goid(), "worker", n, "round", i)
        gostack.yield_()              # also: gostack.sleep(s), blocking channel operations


for n in range(4):
    gostack.go(worker, n)             # go(fn, *args, **kwargs) -> id; from any thread or goroutine
gostack.run()                         # runs them on this thread until all have ended

results = gostack.Chan()              # unbuffered: a send waits for the receiver
gostack.go(lambda: results.send(sum(range(10))))
gostack.go(lambda: print("got", results.recv()))
gostack.run()
