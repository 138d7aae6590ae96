#!/usr/bin/env bash
# Builds the release library and the C-level benchmarks and runs them (prints medians).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_c.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_c
exec target/release/bench_c "$@"
