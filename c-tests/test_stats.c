/*
 * test_stats: gs_get_stats() counts what happens.
 *  - a fresh process has no live goroutines; maxprocs >= 1;
 *  - each spawn adds exactly one to goroutines_total and goroutines_live;
 *  - while goroutines run: stack_reserved covers the running goroutine's stack, committed <= reserved;
 *  - switches grow by at least the number of yields; threads >= 1 once the scheduler ran;
 *  - after gs_run: goroutines_live is 0, goroutines_total does not go down.
 */
#include "gs_test.h"

#define N 10
#define YIELDS 4

static int finished;
static gs_stats inside;
static gs_stack_info inside_stack;

static void fn(void *p) {
    int i = (int)(intptr_t)p;
    for (int k = 0; k < YIELDS; k++) CHECK_OK(gs_yield());
    if (i == 0) {
        CHECK_OK(gs_get_stats(&inside));
        CHECK_OK(gs_get_stack_info(&inside_stack));
    }
    finished++;
}

int main(void) {
    gs_stats s0, s, s2;

    gs_test_begin(100);
    CHECK_OK(gs_get_stats(&s0));
    CHECK_EQ(s0.goroutines_live, 0);
    CHECK(s0.maxprocs >= 1);

    for (int i = 0; i < N; i++) {
        CHECK_ID(gs_spawn(fn, (void *)(intptr_t)i));
        CHECK_OK(gs_get_stats(&s));
        CHECK_EQ(s.goroutines_total, s0.goroutines_total + (uint64_t)i + 1);
        CHECK_EQ(s.goroutines_live, (uint64_t)i + 1);
    }
    CHECK_OK(gs_run());
    CHECK_EQ(finished, N);
    CHECK_OK(gs_get_stats(&s2));

    CHECK_EQ(inside.goroutines_live, N); /* goroutine 0 finishes first, all still alive then */
    CHECK(inside.stack_reserved >= inside_stack.size);
    CHECK(inside.stack_committed > 0);
    CHECK(inside.stack_committed <= inside.stack_reserved);
    CHECK(inside.threads >= 1);

    CHECK_EQ(s2.goroutines_live, 0);
    CHECK_EQ(s2.goroutines_total, s0.goroutines_total + N);
    CHECK(s2.switches >= s0.switches + (uint64_t)N * YIELDS);
    CHECK(s2.threads >= 1);
    CHECK(s2.maxprocs >= 1);
    printf("ok: stats total %" PRIu64 " live %" PRIu64 " switches %" PRIu64 " reserved %" PRIu64
           " committed %" PRIu64 " threads %u maxprocs %u\n",
           s2.goroutines_total, s2.goroutines_live, s2.switches, s2.stack_reserved, s2.stack_committed,
           s2.threads, s2.maxprocs);
    return 0;
}
