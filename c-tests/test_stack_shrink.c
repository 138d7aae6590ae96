/*
 * test_stack_shrink: a goroutine with a window asked smaller than the default (32 KiB: Go-like
 * density, which moves; default windows release pages in place instead, test_stack_window)
 * grows its stack to 2 MiB, returns to a shallow depth and yields:
 * at the second yield in a row with less than a quarter in use (gs_yield is the safe point) the
 * stack moves to a smaller reservation, gs_stack_info shows the smaller size and shrinks >= 1,
 * gs_stats counts the shrink, committed stack memory falls by at least 1 MiB (the old stack's
 * pages go back), and a pointer to a local taken before the shrink still works after it (it moved
 * with the stack). A FIXED stack used deeply never shrinks.
 */
#include "gs_test.h"

static GS_TEST_NOINLINE uint64_t dig(int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    pad[1023] = 1;
    if (depth > 0) return dig(depth - 1) + (uint64_t)pad[0] + pad[1023];
    return 0;
}

static void grower(void *arg) {
    gs_stack_info start, big, small;
    gs_stats s0, s1;
    volatile int marker = 42;
    volatile int *volatile pm = &marker;
    int doublings = 0;
    (void)arg;
    CHECK_OK(gs_get_stack_info(&start));
    (void)dig(1900); /* ~2 MiB */
    CHECK_OK(gs_get_stack_info(&big));
    CHECK(big.size >= 2u << 20);
    while ((start.size << doublings) < big.size) doublings++;
    /* Each growth at least doubles; a frame may need more than twice (one growth, more than one
     * doubling), which ~1 KiB frames here never do but the runtime may: allow one. */
    CHECK(big.grows <= (uint64_t)doublings && big.grows + 1 >= (uint64_t)doublings);
    CHECK_EQ(big.shrinks, 0);
    CHECK_OK(gs_get_stats(&s0));
    CHECK_OK(gs_yield());
    CHECK_OK(gs_yield());
    CHECK_OK(gs_yield());
    CHECK_OK(gs_get_stack_info(&small));
    CHECK_OK(gs_get_stats(&s1));
    CHECK(small.size < big.size);
    CHECK(small.size <= 64 * 1024);
    CHECK(small.shrinks >= 1);
    CHECK(s1.stack_shrinks > s0.stack_shrinks);
    CHECK(s1.stack_committed + (1u << 20) <= s0.stack_committed);
    CHECK(pm == &marker);
    CHECK_EQ(*pm, 42);
    printf("ok: stack %zu -> %zu bytes, committed %" PRIu64 " -> %" PRIu64 " bytes\n", big.size,
           small.size, s0.stack_committed, s1.stack_committed);
}

static void fixed(void *arg) {
    gs_stack_info a, b;
    (void)arg;
    (void)dig(200);
    CHECK_OK(gs_get_stack_info(&a));
    for (int i = 0; i < 4; i++) CHECK_OK(gs_yield());
    CHECK_OK(gs_get_stack_info(&b));
    CHECK_EQ(a.lo, b.lo);
    CHECK_EQ(b.shrinks, 0);
    CHECK_EQ(b.grows, 0);
}

static void other(void *arg) {
    (void)arg;
    for (int i = 0; i < 6; i++) CHECK_OK(gs_yield());
}

int main(void) {
    gs_attr a;
    gs_test_begin(60);
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 32 * 1024;
    CHECK_ID(gs_spawn_with(&a, grower, NULL));
    CHECK_ID(gs_spawn(other, NULL));
    CHECK_OK(gs_attr_init(&a));
    a.stack_kind = GS_STACK_FIXED;
    a.stack_size = 512 * 1024;
    CHECK_ID(gs_spawn_with(&a, fixed, NULL));
    CHECK_OK(gs_run());
    return 0;
}
