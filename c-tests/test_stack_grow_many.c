/*
 * test_stack_grow_many: 1,000 goroutines (8 KiB initial stacks) grow, shrink and yield in random
 * interleavings. Each runs 6 rounds; a round recurses to a random depth (up to ~96 KiB of stack),
 * yielding at random frames on the way down and up, so other goroutines grow and move their stacks
 * while this one is parked in the run queue mid-recursion. Every frame keeps a pointer to its parent's
 * frame and a value derived from the goroutine's seed; the checksum over the way back up must equal
 * the one computed without recursion, and the frame links must stay intact. Per-goroutine PRNGs
 * make every run the same interleaving for a given seed (printed).
 */
#include "gs_test.h"

#include <time.h>

#define N 1000
#define ROUNDS 6

typedef struct frame_link {
    struct frame_link *up;
    uint64_t value;
    volatile char pad[400];
} frame_link;

typedef struct {
    uint64_t rng;
    uint64_t id;
    uint64_t sum;
    int yields;
} state;

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t frame_value(uint64_t id, uint64_t round, uint64_t depth) {
    return (id * 0x9e3779b97f4a7c15u) ^ (round << 32) ^ (depth * 2654435761u);
}

static GS_TEST_NOINLINE uint64_t dive(state *st, frame_link *up, uint64_t round, uint64_t depth, uint64_t max) {
    frame_link l;
    uint64_t sum;
    l.up = up;
    l.value = frame_value(st->id, round, depth);
    l.pad[0] = (char)depth;
    if (next(&st->rng) % 16 == 0) {
        CHECK_OK(gs_yield());
        st->yields++;
    }
    sum = depth < max ? dive(st, &l, round, depth + 1, max) : 0;
    if (next(&st->rng) % 16 == 0) {
        CHECK_OK(gs_yield());
        st->yields++;
    }
    CHECK(l.up == up);
    CHECK_EQ(l.value, frame_value(st->id, round, depth));
    CHECK_EQ(l.pad[0], (char)depth);
    if (up != NULL) CHECK_EQ(up->value, frame_value(st->id, round, depth - 1));
    return sum * 31 + l.value;
}

static void worker(void *p) {
    state *st = p;
    for (uint64_t r = 0; r < ROUNDS; r++) {
        uint64_t max = next(&st->rng) % 200, want = 0;
        for (uint64_t d = max + 1; d-- > 0;) want = want * 31 + frame_value(st->id, r, d);
        CHECK_EQ(dive(st, NULL, r, 0, max), want);
        st->sum += want;
    }
}

int main(void) {
    static state states[N];
    gs_attr a;
    gs_stats st0, st1;
    uint64_t seed = (uint64_t)time(NULL);
    int yields = 0;
    gs_test_begin(100);
    if (getenv("GS_TEST_SEED") != NULL) seed = strtoull(getenv("GS_TEST_SEED"), NULL, 0);
    printf("seed %" PRIu64 " (set GS_TEST_SEED to repeat)\n", seed);
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
    CHECK_OK(gs_get_stats(&st0));
    for (int i = 0; i < N; i++) {
        states[i].rng = seed * 2 + 1 + (uint64_t)i * 0x9e3779b97f4a7c15u;
        if (states[i].rng == 0) states[i].rng = 1;
        states[i].id = (uint64_t)i;
        CHECK_ID(gs_spawn_with(&a, worker, &states[i]));
    }
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&st1));
    for (int i = 0; i < N; i++) yields += states[i].yields;
    CHECK(st1.stack_grows - st0.stack_grows >= N); /* most goroutines grew at least once */
    CHECK(yields > N);
    printf("ok: %d goroutines, %d yields, %" PRIu64 " grows, %" PRIu64 " shrinks\n", N, yields,
           st1.stack_grows - st0.stack_grows, st1.stack_shrinks - st0.stack_shrinks);
    return 0;
}
