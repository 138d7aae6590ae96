/*
 * test_stack_fixed: FIXED stacks never move. A goroutine with a 512 KiB FIXED stack publishes the
 * address of a local in a global, recurses ~400 KiB deep (no growth: the reservation is used in
 * place), yields at the bottom and at the top among GROWABLE goroutines that grow and shrink, and
 * checks that the stack bounds and the published address stay the same throughout, that grows and
 * shrinks stay 0, and that gs_stack_check / GS_STACK_CHECK report GS_ENOMEM (instead of moving
 * anything) when asked for more than is left.
 */
#include "gs_test.h"

static volatile int *published;
static gs_stack_info first;

static GS_TEST_NOINLINE int deep(int depth) {
    volatile char pad[1024];
    gs_stack_info si;
    pad[0] = (char)depth;
    if (depth > 0) return deep(depth - 1) + pad[0];
    CHECK_OK(gs_get_stack_info(&si));
    CHECK_EQ(si.lo, first.lo);
    CHECK_EQ(si.hi, first.hi);
    CHECK(si.used > 400 * 1024);
    CHECK_RC(gs_stack_check(200 * 1024), GS_ENOMEM);
    CHECK_RC(GS_STACK_CHECK(200 * 1024), GS_ENOMEM);
    CHECK_OK(GS_STACK_CHECK(16 * 1024));
    CHECK_OK(gs_yield());
    CHECK_EQ(*published, 1234);
    return 0;
}

static void fixed_fn(void *arg) {
    volatile int local = 1234;
    gs_stack_info si;
    (void)arg;
    published = &local;
    CHECK_OK(gs_get_stack_info(&first));
    CHECK_EQ(first.kind, GS_STACK_FIXED);
    CHECK_EQ(first.size, 512 * 1024);
    (void)deep(400);
    CHECK_OK(gs_yield());
    CHECK_OK(gs_get_stack_info(&si));
    CHECK_EQ(si.lo, first.lo);
    CHECK_EQ(si.hi, first.hi);
    CHECK_EQ(si.grows, 0);
    CHECK_EQ(si.shrinks, 0);
    CHECK(published == &local);
    CHECK_RC(gs_stack_check(1u << 20), GS_ENOMEM);
    printf("ok: FIXED stack [%#lx, %#lx) never moved\n", (unsigned long)si.lo, (unsigned long)si.hi);
}

static GS_TEST_NOINLINE int grow_some(int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth > 0) return grow_some(depth - 1) + pad[0] - (char)depth;
    return gs_yield();
}

static void growable_fn(void *arg) {
    (void)arg;
    for (int i = 0; i < 4; i++) {
        CHECK_OK(grow_some(300));
        CHECK_OK(gs_yield());
    }
}

int main(void) {
    gs_attr a;
    gs_test_begin(60);
    CHECK_OK(gs_attr_init(&a));
    a.stack_kind = GS_STACK_FIXED;
    a.stack_size = 512 * 1024;
    CHECK_ID(gs_spawn(growable_fn, NULL));
    CHECK_ID(gs_spawn_with(&a, fixed_fn, NULL));
    CHECK_ID(gs_spawn(growable_fn, NULL));
    CHECK_OK(gs_run());
    return 0;
}
