/*
 * test_many_goroutines: 100,000 goroutines (5,000 under valgrind, which looks up its list of
 * registered stacks on every switch), all spawned from main before gs_run(), each yielding twice.
 *  - every spawn succeeds; goroutines_live counts them while they wait to run;
 *  - each goroutine runs its three parts exactly once, in exact round-robin order
 *    (resume k is goroutine k mod 100,000);
 *  - afterwards goroutines_live is back to 0 and goroutines_total grew by exactly 100,000.
 */
#include "gs_test.h"

#define N_MAX 100000
#define YIELDS 2

static int N; /* N_MAX, or less under valgrind (gs_test_workload in main) */
static unsigned char parts[N_MAX];
static int32_t order[N_MAX * (YIELDS + 1)];
static size_t order_len;

static void fn(void *p) {
    int32_t i = (int32_t)(intptr_t)p;
    for (int r = 0; r <= YIELDS; r++) {
        parts[i]++;
        CHECK(order_len < (size_t)N * (YIELDS + 1));
        order[order_len++] = i;
        if (r < YIELDS) CHECK_OK(gs_yield());
    }
}

int main(void) {
    gs_stats s0, s1, s2;

    gs_test_begin(100);
    N = (int)gs_test_workload(N_MAX, 5000);
    CHECK_OK(gs_get_stats(&s0));
    CHECK_EQ(s0.goroutines_live, 0);
    if (s0.maxprocs != 1) fprintf(stderr, "FIFO order needs one P: run with GOSTACK_MAXPROCS=1\n");
    CHECK_EQ(s0.maxprocs, 1);

    for (intptr_t i = 0; i < N; i++) CHECK_ID(gs_spawn(fn, (void *)i));
    CHECK_OK(gs_get_stats(&s1));
    CHECK_EQ(s1.goroutines_live, N);
    CHECK_EQ(s1.goroutines_total - s0.goroutines_total, N);
    CHECK_EQ(order_len, 0); /* nothing ran before gs_run */

    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&s2));

    for (int i = 0; i < N; i++) {
        if (parts[i] != YIELDS + 1) fprintf(stderr, "goroutine #%d ran %d parts\n", i, parts[i]);
        CHECK_EQ(parts[i], YIELDS + 1);
    }
    CHECK_EQ(order_len, (size_t)N * (YIELDS + 1));
    for (size_t k = 0; k < order_len; k++) {
        if (order[k] != (int32_t)(k % N))
            fprintf(stderr, "resume #%zu was goroutine #%d, expected #%d\n", k, order[k], (int)(k % N));
        CHECK_EQ(order[k], k % N);
    }
    CHECK_EQ(s2.goroutines_live, 0);
    CHECK_EQ(s2.goroutines_total - s0.goroutines_total, N);
    CHECK(s2.switches - s0.switches >= (uint64_t)N * YIELDS);
    printf("ok: %d goroutines x %d yields, round robin, live back to 0\n", N, YIELDS);
    return 0;
}
