#!/usr/bin/env bash
# The C test suite under valgrind's memcheck (issue #14): every C test at one P, each run as
# `valgrind -q --error-exitcode=99 <test>`, so a memcheck error fails the test. The tests that
# cannot run under valgrind are skipped with the reason (tests/c_tests.rs, NOT_UNDER_RUNNER).
# ~10 minutes on 2 cores; not part of README's test command (which stays a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
GOSTACK_C_TEST_RUNNER="valgrind -q --error-exitcode=99" \
  cargo test --release --test c_tests -- --skip p2:: --skip p4:: --skip gdb_ --skip p2_ --test-threads=2
