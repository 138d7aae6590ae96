"""The Python side of benches/compare: runs one of python/benchmarks/bench.py's workloads for
gostack, greenlet or asyncio and prints "raw<TAB>name<TAB>value" lines (ns per operation, or
bytes per parked goroutine), one per repetition.

    python3 benches/compare/py_bench.py WORKLOAD LIB [REPS]
      WORKLOAD: yield | spawn | pingpong | parked     LIB: gostack | greenlet | asyncio

The workloads themselves are bench.py's (not copied): yield = A->B->A round trip, spawn = start
and run an empty function to the end, pingpong = send + receive back (gostack: two unbuffered
Chans; asyncio: two Queue(1); greenlet has no channel), parked = RSS growth per parked
goroutine/greenlet/task (run one repetition per process: RSS is not given back).
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench", ROOT / "python" / "benchmarks" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

N = {"yield": 100_000, "spawn": 20_000, "pingpong": 50_000, "parked": 10_000}
FN = {
    ("yield", "gostack"): bench.gs_yield,
    ("yield", "greenlet"): bench.gl_yield,
    ("yield", "asyncio"): bench.aio_yield,
    ("spawn", "gostack"): bench.gs_spawn,
    ("spawn", "greenlet"): bench.gl_spawn,
    ("spawn", "asyncio"): bench.aio_spawn,
    ("pingpong", "gostack"): bench.gs_chan_pingpong,
    ("pingpong", "asyncio"): bench.aio_queue_pingpong,
    ("parked", "gostack"): bench.gs_parked,
    ("parked", "greenlet"): bench.gl_parked,
    ("parked", "asyncio"): bench.aio_parked,
}


def main():
    work, lib = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    if work == "versions":
        print(f"python {sys.version.split()[0]} greenlet {bench.greenlet.__version__}")
        return
    fn, n = FN[(work, lib)], N[work]
    for _ in range(reps):
        v = fn(n)
        print(f"raw\tpy {work}\t{v if work == 'parked' else v / n * 1e9:.3f}", flush=True)


if __name__ == "__main__":
    main()
