/*
 * test_stack_idle_memory: memory kept after the work is done (issue #20 item 13, with the 256 KiB
 * windows of issue #12). 2,000 goroutines are alive at once, each having touched 200 KiB of its
 * window; when they have all exited, the pools may keep some stacks warm for the next spawns, but
 * bounded by bytes: committed stack memory must fall below 64 MiB (it was ~400 MiB while they
 * ran). Without the byte bound the global pool kept 1,024 deep windows warm (~200 MiB).
 */
#include "gs_test.h"

#define N 2000
#define DEPTH (200 * 1024)

static gs_waitgroup *touched;
static gs_chan *release;

static GS_TEST_NOINLINE int touch(void) {
    volatile char buf[DEPTH];
    for (size_t i = 0; i < DEPTH; i += 4096) buf[i] = (char)i;
    buf[DEPTH - 1] = 1;
    return buf[4096] + buf[DEPTH - 1];
}

static void worker(void *arg) {
    int v;
    (void)arg;
    CHECK_EQ(touch(), 1);
    CHECK_OK(gs_waitgroup_done(touched));
    CHECK_RC(gs_chan_recv(release, &v), GS_ECLOSED); /* released by the close */
}

static void boss(void *arg) {
    gs_stats s;
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(touched));
    CHECK_OK(gs_get_stats(&s));
    printf("while %d goroutines hold 200 KiB each: %" PRIu64 " KiB committed\n", N, s.stack_committed / 1024);
    CHECK(s.stack_committed >= (uint64_t)N * DEPTH / 2);
    CHECK(s.stack_in_use >= (uint64_t)N * 256 * 1024);
    CHECK_OK(gs_chan_close(release));
}

int main(void) {
    gs_stats s;
    gs_test_begin(120);
    touched = gs_waitgroup_new();
    release = gs_chan_new(sizeof(int), 0);
    CHECK(touched != NULL && release != NULL);
    CHECK_OK(gs_waitgroup_add(touched, N));
    for (int i = 0; i < N; i++) CHECK_ID(gs_spawn(worker, NULL));
    CHECK_ID(gs_spawn(boss, NULL));
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&s));
    printf("after they exited: %" PRIu64 " KiB committed, %" PRIu64 " KiB reserved\n", s.stack_committed / 1024,
           s.stack_reserved / 1024);
    CHECK(s.stack_committed < 64u << 20);
    /* gs_stats says where the memory is: no goroutine holds a stack now, the pools keep the
     * reservation (address space), and the 2,001 goroutine records stay allocated for reuse. */
    CHECK_EQ(s.stack_in_use, 0);
    CHECK_EQ(s.stack_pooled, s.stack_reserved);
    CHECK(s.goroutine_records >= N + 1);
    printf("in use %" PRIu64 " KiB, pooled %" PRIu64 " KiB, %" PRIu64 " goroutine records\n", s.stack_in_use / 1024,
           s.stack_pooled / 1024, s.goroutine_records);
    CHECK_OK(gs_waitgroup_free(touched));
    CHECK_OK(gs_chan_free(release));
    return 0;
}
