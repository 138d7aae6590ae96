#!/usr/bin/env bash
# The C test suite under valgrind's memcheck (issue #14): every C test at one P, each run as
# `valgrind -q --error-exitcode=99 --vex-iropt-register-updates=allregs-at-mem-access <test>`, so
# a memcheck error fails it; the runtime's SIGSEGV handler reads and rewrites the interrupted
# registers, which memcheck makes exact only with that --vex option.
#
#   bash .ci/valgrind.sh        every C test (what CI runs: ~2 minutes on 2 cores). With
#   bash .ci/valgrind.sh all    GS_TEST_UNDER_VALGRIND=1 two tests take smaller workloads
#                               (c-tests/gs_test.h: gs_test_workload): test_many_goroutines 5,000
#                               goroutines instead of 100,000 and test_chan_classic 100,000 ring
#                               hops instead of 1,000,000 (valgrind looks up its list of
#                               registered stacks on every switch), and test_stack_torture runs
#                               2,000 tasks (TORTURE_TASKS).
#
# Not run under valgrind, each with its reason in tests/c_tests.rs (NOT_UNDER_RUNNER): the tests
# that move stacks in the SIGSEGV handler (valgrind does not restore vector registers at
# sigreturn), test_stack_bigframe, test_fp_control and test_signal_chain. The last full run is
# recorded in docs/DEBUGGING.md. `all` is kept as a synonym (it was the long run before the whole
# suite fit in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
GOSTACK_C_TEST_RUNNER="valgrind -q --error-exitcode=99 --vex-iropt-register-updates=allregs-at-mem-access" \
  cargo test --release --test c_tests -- --skip p2:: --skip p4:: --skip p8:: --skip gdb_ --skip p2_ --test-threads=2
