#!/usr/bin/env bash
# Builds the release library and the stack-growth benchmark and runs it with one P (prints
# medians). Optional argument: grow | many | parked | shrink, or signal (the kernel's bare SIGSEGV
# round trip, the floor under growth by guard faults) or touch (the time to touch 192 MiB of fresh
# memory, the floor under a first-run growth to 64 MiB); those two involve no gostack.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    signal | touch)
        floor=$([ "$1" = signal ] && echo bench_sigsegv || echo bench_touch)
        mkdir -p target/release
        cc -std=gnu11 -O2 -Wall -Wextra -Werror "benches/c/$floor.c" -o "target/release/$floor"
        exec "target/release/$floor" "${@:2}" ;;
esac
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude benches/c/bench_growth.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/bench_growth
GOSTACK_MAXPROCS=1 exec target/release/bench_growth "$@"
