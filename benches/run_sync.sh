#!/usr/bin/env bash
# Builds the release library and the synchronisation benchmarks (issue 5) and runs them with one
# P (prints medians). Usage: bash benches/run_sync.sh [scale]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_sync.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_sync
GOSTACK_MAXPROCS="${GOSTACK_MAXPROCS:-1}" exec target/release/bench_sync "$@"
