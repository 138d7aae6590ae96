#!/usr/bin/env bash
# The C test suite built with AddressSanitizer (issue #14): every C test at one P compiled with
# -fsanitize=address against the unmodified library, run with detect_stack_use_after_return=1
# (tests that look at their locals' addresses run with it off; tests that cannot run under ASan
# are skipped with the reason: tests/c_tests.rs, NOT_UNDER_ASAN / ASAN_REAL_STACK).
set -euo pipefail
cd "$(dirname "$0")/.."
GOSTACK_C_TEST_CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
  cargo test --release --test c_tests -- --skip p2:: --skip p4:: --skip gdb_ --skip p2_ --test-threads=2
