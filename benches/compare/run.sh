#!/usr/bin/env bash
# Side-by-side benchmarks (issue 7): gostack against Go, Boost.Context, greenlet and asyncio, built
# and run in one session; prints a table (min/median/max, ratio gostack/rival of the medians).
#
#   bash benches/compare/run.sh               install what is missing, build, run (~5 minutes)
#   bash benches/compare/run.sh --build-only  install and build every program, run nothing (CI)
#   bash benches/compare/run.sh --reps 7      more separate-process repetitions (default 5)
#   bash benches/compare/run.sh --only sched  only the scheduler workloads (issue 21: thread-ring,
#                                             cross-thread ping-pong, fan-out; ~2 minutes)
#   bash benches/compare/run.sh --only echo   only the TCP echo rows (issue #13; ~4 minutes at --reps 3)
#
# Outputs under benches/compare/build/: compare.md (the table as markdown), compare.png (ratios),
# results.json (every raw value). Installs with apt-get (golang-go, libboost-context-dev, g++) and
# pip (python/requirements-bench.txt) when missing: run as root, or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_only=0
if [ "${1:-}" = "--build-only" ]; then build_only=1; shift; fi
B=benches/compare/build
mkdir -p "$B"

need=()
command -v go >/dev/null || need+=(golang-go)
[ -f /usr/include/boost/context/detail/fcontext.hpp ] || need+=(libboost-context-dev)
command -v g++ >/dev/null || need+=(g++)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ $build_only = 0 ] && ! python3 -c "import greenlet, matplotlib" 2>/dev/null; then
  python3 -m pip install -q -r python/requirements-bench.txt
fi
# uvloop is a rival of the Python echo row when it installs (a wheel for this Python); not required.
if [ $build_only = 0 ] && ! python3 -c "import uvloop" 2>/dev/null; then
  python3 -m pip install -q uvloop 2>/dev/null || echo "uvloop did not install: its echo column stays empty" >&2
fi

echo "building gostack, its C benchmarks, the Go and Boost programs" >&2
cargo build --release --quiet
cargo bench --no-run --quiet --bench switch 2>/dev/null
for p in benches/c/bench_c.c benches/c/bench_sync.c benches/c/bench_growth.c benches/c/bench_echo.c \
         benches/c/bench_copy.c benches/compare/c/spawn_all.c benches/compare/c/sched_bench.c; do
  cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude "$p" -Ltarget/release -lgostack \
     -Wl,-rpath,"$PWD/target/release" -o "$B/$(basename "$p" .c)"
done
for p in benches/c/bench_sigsegv.c benches/c/bench_touch.c; do # kernel floors (no gostack): compiled here so CI checks them
  cc -std=gnu11 -O2 -Wall -Wextra -Werror "$p" -o "$B/$(basename "$p" .c)"
done
g++ -std=c++17 -O2 -Wall -Wextra -Werror benches/compare/boost/bench_boost.cpp -lboost_context -o "$B/bench_boost"
# Go: standard library only, no network; caches under the build folder.
(cd benches/compare/go && GOCACHE="$PWD/../build/gocache" GOPATH="$PWD/../build/gopath" GOFLAGS=-mod=mod \
   GOPROXY=off GOTOOLCHAIN=local go build -o ../build/compare-go .)
if [ $build_only = 1 ]; then echo "benches/compare: every program built" >&2; exit 0; fi

exec python3 benches/compare/compare.py "$@"
