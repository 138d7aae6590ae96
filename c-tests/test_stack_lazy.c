/*
 * test_stack_lazy: a GROWABLE goroutine takes its stack at its first run, not at spawn, so that
 * many goroutines spawned at once and run one after another reuse the same warm stacks (Go's
 * 100k x 64 KiB growth case). Spawning 10,000 goroutines reserves no stack memory (on one P;
 * on several, only what the goroutines already running there take); running them
 * gives each a working stack (locals inside its bounds, deep enough to grow); a FIXED goroutine
 * still gets its stack at spawn (so that failing to get it is GS_ENOMEM for the spawner).
 */
#include "gs_test.h"

enum { N = 10000 };

static int ran;
static long grown;

static GS_TEST_NOINLINE long dig(int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth == 0) return pad[0];
    return dig(depth - 1) + pad[0];
}

GS_TEST_REAL_STACK static void body(void *arg) {
    int local = (int)(intptr_t)arg;
    gs_stack_info si;
    CHECK_OK(gs_get_stack_info(&si));
    CHECK(si.kind == GS_STACK_GROWABLE);
    CHECK((uintptr_t)&local >= si.lo && (uintptr_t)&local < si.hi);
    if (local % 100 == 0) __atomic_fetch_add(&grown, dig(40) >= 0, __ATOMIC_RELAXED); /* ~40 KiB: grows */
    __atomic_fetch_add(&ran, 1, __ATOMIC_RELAXED);
}

static void fixed_body(void *arg) {
    (void)arg;
    __atomic_fetch_add(&ran, 1, __ATOMIC_RELAXED);
}

int main(void) {
    gs_stats s0, s1, s2;
    CHECK_OK(gs_get_stats(&s0));
    for (intptr_t i = 0; i < N; i++) CHECK_ID(gs_spawn(body, (void *)i));
    CHECK_OK(gs_get_stats(&s1));
    /* Reserving at spawn would take 10,000 x 320 KiB (the 256 KiB window and its 64 KiB guard)
     * = 3.1 GiB. On one P nothing runs before gs_run, so spawning reserves nothing at all. On
     * several, the other Ps start running the goroutines while this loop spawns them (spinning
     * Ms look at once), and each refills its stack cache from the pool in batches of 32 stacks
     * (10 MiB of 320 KiB slots) from arenas that double up to 32 MiB, so their reservation may
     * reach a few batches: 64 MiB per P bounds it, still 12x below reserving at spawn at P=4
     * (the bound was 6 MiB per P with the 32 KiB stacks of before issue 12, and with issue 21's
     * spinning Ms it failed now and then at P=4). */
    uint64_t bound = s1.maxprocs == 1 ? 0 : (uint64_t)s1.maxprocs * (64u << 20);
    CHECK(s1.stack_reserved - s0.stack_reserved <= bound);
    CHECK_OK(gs_run());
    CHECK_EQ(ran, N);
    CHECK_EQ(grown, N / 100);

    gs_attr a;
    CHECK_OK(gs_attr_init(&a));
    a.stack_kind = GS_STACK_FIXED;
    a.stack_size = 1u << 20;
    CHECK_OK(gs_get_stats(&s1));
    CHECK_ID(gs_spawn_with(&a, fixed_body, NULL));
    CHECK_OK(gs_get_stats(&s2));
    CHECK(s2.stack_reserved - s1.stack_reserved >= 1u << 20);
    CHECK_OK(gs_run());
    CHECK_EQ(ran, N + 1);
    return 0;
}
