"""Python yield/spawn/ping-pong of two gostack trees and greenlet, alternated in one run (issue 16):
each round runs `benches/compare/py_bench.py WORKLOAD LIB 3` once per tree and for greenlet; the
medians of all samples are printed. A tree is a checkout with target/release/libgostack.so built.

    python3 benches/py_breakdown/speed.py ROUNDS yield,spawn,pingpong BEFORE_TREE AFTER_TREE [PYTHON]
"""
import os
import statistics
import subprocess
import sys

rounds, works, before, after = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], sys.argv[4]
py = sys.argv[5] if len(sys.argv) > 5 else sys.executable


def run(tree, work, lib):
    env = dict(os.environ, PYTHONPATH=os.path.join(tree, "python"), GOSTACK_MAXPROCS="1",
               GOSTACK_LIBRARY=os.path.join(tree, "target", "release", "libgostack.so"))
    out = subprocess.run([py, os.path.join(tree, "benches", "compare", "py_bench.py"), work, lib, "3"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return [float(line.split("\t")[2]) for line in out.splitlines() if line.startswith("raw")]


res = {}
for _ in range(rounds):
    for w in works:
        for name, tree, lib in (("before", before, "gostack"), ("after", after, "gostack"), ("greenlet", after, "greenlet")):
            if w == "pingpong" and lib == "greenlet":
                continue  # greenlet has no channel
            res.setdefault((w, name), []).extend(run(tree, w, lib))
for (w, name), v in sorted(res.items()):
    print(f"{w:9s} {name:9s} median {statistics.median(v):9.1f} ns  min {min(v):9.1f}  n={len(v)}")
