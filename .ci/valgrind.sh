#!/usr/bin/env bash
# C tests under valgrind's memcheck (issue #14): each test run as
# `valgrind -q --error-exitcode=99 <test>` at one P, so a memcheck error fails it.
#
#   bash .ci/valgrind.sh        the subset CI runs (~3 minutes on 2 cores): channels, select,
#                               sync, exit, dump, main, and stacks that grow, shrink and release
#   bash .ci/valgrind.sh all    every C test (long: valgrind searches its list of registered
#                               stacks on every switch, so tests with 10,000-100,000 goroutines
#                               take tens of minutes each)
#
# Tests that cannot run under valgrind (growth by guard faults among them) are skipped with the reason (tests/c_tests.rs,
# NOT_UNDER_RUNNER).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
subset=(test_chan test_chan_stack_edge test_chan_timeout_race test_select test_select_free
        test_mutex_wg_sema test_exit test_dump test_gs_main test_stack_window test_stack_shrink
        test_errno test_stack_check)
args=(--skip p2:: --skip p4:: --skip gdb_ --skip p2_ --test-threads=2)
if [ "${1:-}" != all ]; then args=(--exact "${subset[@]}" --test-threads=2); fi
GOSTACK_C_TEST_RUNNER="valgrind -q --error-exitcode=99 --vex-iropt-register-updates=allregs-at-mem-access" cargo test --release --test c_tests -- "${args[@]}"
