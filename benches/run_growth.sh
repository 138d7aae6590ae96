#!/usr/bin/env bash
# Builds the release library and the stack-growth benchmark and runs it with one P (prints
# medians). Optional argument: grow | many | parked | shrink, or signal (the kernel's bare SIGSEGV
# round trip, the floor under growth by guard faults; no gostack involved).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = signal ]; then
    cc -std=gnu11 -O2 -Wall -Wextra -Werror benches/c/bench_sigsegv.c -o target/release/bench_sigsegv
    exec target/release/bench_sigsegv
fi
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_growth.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_growth
GOSTACK_MAXPROCS=1 exec target/release/bench_growth "$@"
