/*
 * test_exit: gs_exit() ends the calling goroutine from deep inside nested calls.
 *  - no code after gs_exit runs (neither in the function that called it nor in its callers);
 *  - the other goroutines keep running to completion, interleaved as before;
 *  - works on GROWABLE and FIXED stacks, on the first run and after yields;
 *  - the exited goroutine's stack is recycled: over 20 batches of 200 exiting goroutines the
 *    reserved stack bytes grow by less than 4 batches' stacks and stop growing in the second
 *    half (leaking would add a batch's worth per batch); goroutines_live returns to 0;
 *  - outside a goroutine gs_exit returns GS_ENOTGOROUTINE.
 */
#include "gs_test.h"

static volatile int after_exit;  /* set by code that must never run */
static int exits_started;
static int steps[8];

static GS_TEST_NOINLINE int deep(int depth) {
    volatile char frame[64];
    frame[0] = (char)depth;
    if (depth == 0) {
        __atomic_fetch_add(&exits_started, 1, __ATOMIC_RELAXED); /* several Ps: atomic */
        gs_exit();
        after_exit = 1; /* gs_exit returned */
        return 0;
    }
    int r = deep(depth - 1) + frame[0];
    after_exit = 2; /* unwound into a caller */
    return r;
}

typedef struct {
    int slot;
    int yields_before;
    int depth;
} exiter;

static void exiter_fn(void *p) {
    exiter *e = p;
    for (int i = 0; i < e->yields_before; i++) {
        steps[e->slot]++;
        CHECK_OK(gs_yield());
    }
    steps[e->slot]++;
    (void)deep(e->depth);
    after_exit = 3; /* returned to the goroutine body */
}

static void counter_fn(void *p) {
    int slot = (int)(intptr_t)p;
    for (int i = 0; i < 10; i++) {
        steps[slot]++;
        CHECK_OK(gs_yield());
    }
    steps[slot]++;
}

#define BATCHES 20
#define BATCH 200
static size_t batch_stack_size;

static void batch_fn(void *p) {
    gs_stack_info si;
    (void)p;
    CHECK_OK(gs_get_stack_info(&si));
    __atomic_store_n(&batch_stack_size, si.size, __ATOMIC_RELAXED); /* written by goroutines on several threads */
    (void)deep(20);
    after_exit = 4;
}

int main(void) {
    static exiter e1 = {0, 0, 30}, e2 = {1, 3, 30}, e3 = {2, 5, 300};
    gs_attr fixed;
    gs_stats s;
    uint64_t reserved[BATCHES], growth;

    gs_test_begin(100);
    CHECK_RC(gs_exit(), GS_ENOTGOROUTINE);

    CHECK_ID(gs_spawn(exiter_fn, &e1));           /* exits on its first run */
    CHECK_ID(gs_spawn(counter_fn, (void *)(intptr_t)3));
    CHECK_ID(gs_spawn(exiter_fn, &e2));           /* exits after 3 yields */
    CHECK_OK(gs_attr_init(&fixed));
    fixed.stack_kind = GS_STACK_FIXED;
    fixed.stack_size = 128 * 1024;
    CHECK_ID(gs_spawn_with(&fixed, exiter_fn, &e3)); /* FIXED stack, 300 frames deep */
    CHECK_ID(gs_spawn(counter_fn, (void *)(intptr_t)4));
    CHECK_OK(gs_run());

    CHECK_EQ(after_exit, 0);
    CHECK_EQ(exits_started, 3);
    CHECK_EQ(steps[0], 1);
    CHECK_EQ(steps[1], 4);
    CHECK_EQ(steps[2], 6);
    CHECK_EQ(steps[3], 11);
    CHECK_EQ(steps[4], 11);
    CHECK_OK(gs_get_stats(&s));
    CHECK_EQ(s.goroutines_live, 0);
    printf("ok: gs_exit from 30 and 300 frames deep, others ran to completion\n");

    for (int batch = 0; batch < BATCHES; batch++) {
        for (int i = 0; i < BATCH; i++) CHECK_ID(gs_spawn(batch_fn, NULL));
        CHECK_OK(gs_run());
        CHECK_OK(gs_get_stats(&s));
        CHECK_EQ(s.goroutines_live, 0);
        reserved[batch] = s.stack_reserved;
    }
    /* Leaked stacks would add a batch's worth of reservation (BATCH * stack size) per batch, 20
     * batches' worth in all. Pools and arenas may settle over the first batches, but the total
     * growth must stay below 4 batches' worth, and the second half must not grow at all. */
    CHECK(batch_stack_size > 0);
    growth = reserved[BATCHES - 1] > reserved[0] ? reserved[BATCHES - 1] - reserved[0] : 0;
    if (growth >= 4 * BATCH * batch_stack_size || (gs_maxprocs() == 1 && reserved[BATCHES - 1] > reserved[BATCHES / 2])) {
        for (int b = 0; b < BATCHES; b++)
            fprintf(stderr, "after batch %2d: stack_reserved %" PRIu64 "\n", b, reserved[b]);
        fprintf(stderr, "stacks of exited goroutines are not reused (stack size %zu)\n", batch_stack_size);
    }
    CHECK(growth < 4 * BATCH * batch_stack_size);
    /* With several Ps each P caches stacks of its own and may still map an arena late; the
     * "no growth in the second half" settling is a one-P property. */
    if (gs_maxprocs() == 1) CHECK(reserved[BATCHES - 1] <= reserved[BATCHES / 2]);
    CHECK_EQ(after_exit, 0);
    CHECK_EQ(exits_started, 3 + BATCHES * BATCH);
    printf("ok: %d exited goroutines, stack_reserved %" PRIu64 " -> %" PRIu64 " bytes\n", BATCHES * BATCH,
           reserved[0], reserved[BATCHES - 1]);

    CHECK_RC(gs_exit(), GS_ENOTGOROUTINE);
    return 0;
}
