/*
 * test_tsan_report: built with -fsanitize=thread (.ci/tsan.sh, at 2 Ps), a data race between two
 * goroutines on different threads is reported by ThreadSanitizer (issue #14): the library makes
 * each goroutine a TSan fiber and announces the happens-before edges of its channels, mutexes,
 * wait groups and semaphores (src/sched/sanitizer.rs), so correct programs report nothing (the
 * rest of the sync tests under .ci/tsan.sh) and racy ones are caught. Built without TSan it has
 * nothing to check and says so.
 */
#include "gs_test.h"

#if defined(__SANITIZE_THREAD__)
static long shared_value;
static int started;

static GS_TEST_NOINLINE void writer_side(void) { shared_value = 42; }
static GS_TEST_NOINLINE long reader_side(void) { return shared_value; }

/* Keeps its thread busy (no switch) until the reader runs, so the reader runs on the other P. */
static void writer(void *arg) {
    (void)arg;
    writer_side();
    for (long i = 0; i < 2000000000L && !__atomic_load_n(&started, __ATOMIC_RELAXED); i++) {
    }
}

static void reader(void *arg) {
    (void)arg;
    __atomic_store_n(&started, 1, __ATOMIC_RELAXED); /* relaxed: no happens-before */
    printf("read %ld\n", reader_side());
}

static void racy(void *arg) {
    (void)arg;
    gs_set_maxprocs(2);
    CHECK_ID(gs_spawn_with(&(gs_attr){.stack_kind = GS_STACK_GROWABLE, .flags = GS_SPAWN_MIGRATABLE}, writer, NULL));
    CHECK_ID(gs_spawn_with(&(gs_attr){.stack_kind = GS_STACK_GROWABLE, .flags = GS_SPAWN_MIGRATABLE}, reader, NULL));
    gs_run();
}

/* The same exchange through a channel: no report. */
static gs_chan *ch;
static void clean_writer(void *arg) {
    int one = 1;
    (void)arg;
    writer_side();
    CHECK_OK(gs_chan_send(ch, &one));
}
static void clean_reader(void *arg) {
    int v;
    (void)arg;
    CHECK_OK(gs_chan_recv(ch, &v));
    CHECK_EQ(reader_side(), 42);
}

int main(void) {
    gs_test_child c;
    gs_test_begin(60);
    /* The racy run first, in a child forked before any thread starts (TSan refuses a fork of a
     * multi-threaded process). */
    gs_test_child_run(racy, NULL, 30, &c);
    gs_test_current_child = &c;
    CHECK(gs_test_contains(c.err, "WARNING: ThreadSanitizer: data race"));
    CHECK(gs_test_contains(c.err, "writer_side"));
    CHECK(gs_test_contains(c.err, "reader_side"));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: ThreadSanitizer reports a race between goroutines on two threads\n");
    /* The same exchange through a channel, 2 Ps: no report (TSan's exit status would say). */
    gs_set_maxprocs(2);
    ch = gs_chan_new(sizeof(int), 0);
    CHECK_ID(gs_spawn(clean_reader, NULL));
    CHECK_ID(gs_spawn(clean_writer, NULL));
    CHECK_OK(gs_run());
    CHECK_OK(gs_chan_free(ch));
    printf("ok: and nothing for the exchange through a channel\n");
    return 0;
}
#else
int main(void) {
    printf("test_tsan_report: not built with -fsanitize=thread; nothing to check (.ci/tsan.sh runs it)\n");
    return 0;
}
#endif
