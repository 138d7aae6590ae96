#!/usr/bin/env bash
# The synchronisation tests built with ThreadSanitizer at 2 Ps (issue #14): goroutines are TSan
# fibers and every channel, mutex, wait group and semaphore operation announces its
# happens-before edge (src/sched/sanitizer.rs), so these correct programs must report nothing
# (TSan's exit status 66 fails a test); test_tsan_report checks that a seeded race between two
# goroutines on different threads is reported. Reports about memory the uninstrumented library
# allocates are suppressed (tools/tsan/gostack.supp). Not here: test_chan_classic (its 10,000
# goroutines are 10,000 TSan fibers, past TSan's limit of 8,128 threads: "Thread limit exceeded").
set -euo pipefail
cd "$(dirname "$0")/.."
GOSTACK_C_TEST_CFLAGS="-fsanitize=thread" \
  cargo test --release --test c_tests -- --exact test_tsan_report p2::test_chan \
    p2::test_select p2::test_mutex_wg_sema p2::test_sync_threads_stress p2::test_sync_foreign_thread \
    p2::test_exit --test-threads=2
