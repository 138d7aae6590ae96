#!/usr/bin/env bash
# Builds the release library and the stack-growth benchmark and runs it with one P (prints
# medians). Optional argument: grow | many | parked | shrink.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_growth.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_growth
GOSTACK_MAXPROCS=1 exec target/release/bench_growth "$@"
