#!/usr/bin/env bash
# The C test suite built with AddressSanitizer (issue #14): every C test at one P compiled with
# -fsanitize=address against the unmodified library, run with
# ASAN_OPTIONS=detect_stack_use_after_return=1:allow_user_segv_handler=1 (tests/c_tests.rs), so a
# report (or any other failure) fails the test. Use-after-return detection is on in every test,
# stack moves included (the runtime fixes up ASan's fake frames: src/sched/sanitizer.rs); only
# the few functions that check where their own locals lie are not instrumented
# (GS_TEST_REAL_STACK, c-tests/gs_test.h). Not run under ASan, each with its reason in
# tests/c_tests.rs (NOT_UNDER_ASAN): test_stack_window and test_stack_fixed (ASan's bigger frames
# no longer fit the sizes they assert) and test_api_edges (RLIMIT_AS leaves no room for ASan's
# shadow). test_asan_report checks that a seeded stack buffer overflow in a goroutine is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
GOSTACK_C_TEST_CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
  cargo test --release --test c_tests -- --skip p2:: --skip p4:: --skip p8:: --skip gdb_ --skip p2_ --test-threads=2
