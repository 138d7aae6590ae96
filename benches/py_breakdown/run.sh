#!/usr/bin/env bash
# Where the memory of a parked Python goroutine goes (issue 16): RSS and page tables per parked
# goroutine, its C stack pages (mincore over each goroutine's stack), its data-stack chunk pages
# (a spy around CPython's arena allocator, chunkspy.c, built here), and the rest; then greenlet's
# and asyncio's RSS per parked greenlet/task in the same run, for comparison.
#
#   bash benches/py_breakdown/run.sh [N]      (default 10,000 goroutines)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
B=benches/py_breakdown/build
mkdir -p "$B"
cargo build --release --quiet
cc -O2 -Wall -Wextra -Werror -shared -fPIC $(python3-config --includes) benches/py_breakdown/chunkspy.c -o "$B/chunkspy.so"
export GOSTACK_LIBRARY="$PWD/target/release/libgostack.so" PYTHONPATH=python GOSTACK_MAXPROCS=1
python3 benches/py_breakdown/breakdown.py "$n" "$B/chunkspy.so"
for lib in gostack greenlet asyncio; do
  echo "$lib: $(python3 benches/compare/py_bench.py parked "$lib" 1 | cut -f3) B RSS per parked (10,000)"
done
