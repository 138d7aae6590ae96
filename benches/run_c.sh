#!/usr/bin/env bash
# Builds the release library and the C-level benchmarks and runs them (prints medians).
# bash benches/run_c.sh [yield|spawn]   switch/spawn benchmarks
# bash benches/run_c.sh sched [P]       M:N scheduler benchmarks (P = 1 vs P, default all CPUs)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_c.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_c
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_sched.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_sched
case "${1:-}" in
  sched) shift; exec target/release/bench_sched "$@" ;;
  *) exec target/release/bench_c "$@" ;;
esac
