/*
 * test_stack_check: the GS_STACK_CHECK(bytes) macro and gs_stack_check(bytes).
 *  - fast path: a request that fits returns GS_OK and moves nothing;
 *  - a default (256 KiB) window holds a 100 KiB request without moving;
 *  - slow path: 100 KiB on a 32 KiB GROWABLE window grows it (synchronously, on g0) to a
 *    reservation with that much room below the caller; a pointer to a local taken before still
 *    points at it (moved), the local's value is intact, grows counts it;
 *  - deep recursion with a check in every frame reaches 4 MiB without relying on guard faults;
 *  - past the goroutine's max_stack_size: GS_ENOMEM and nothing moves;
 *  - outside goroutines and inside gs_systemstack: GS_OK (the thread's own stack).
 */
#include "gs_test.h"

static GS_TEST_NOINLINE int checked_recurse(int depth) {
    volatile char pad[1000];
    pad[0] = (char)depth;
    if (GS_STACK_CHECK(2048) != GS_OK) return -1;
    if (depth > 0) return checked_recurse(depth - 1) + pad[0] - (char)depth;
    return 0;
}

static void in_systemstack(void *arg) {
    *(int *)arg = GS_STACK_CHECK(1u << 20);
}

GS_TEST_REAL_STACK static void body(void *arg) {
    volatile uint64_t local = 0xfeedface;
    volatile uint64_t *volatile p = &local;
    gs_stack_info a, b, c;
    int rc = -1;
    (void)arg;
    CHECK_OK(gs_get_stack_info(&a));
    CHECK_EQ(a.size, 32768);
    CHECK_OK(GS_STACK_CHECK(1024));
    CHECK_OK(gs_get_stack_info(&b));
    CHECK_EQ(b.lo, a.lo);
    CHECK_EQ(b.grows, 0);

    CHECK_OK(GS_STACK_CHECK(100 * 1024));
    CHECK_OK(gs_get_stack_info(&c));
    CHECK(c.lo != a.lo);
    CHECK(c.size >= 100 * 1024 + c.used);
    CHECK_EQ(c.grows, 1);
    CHECK(p == &local);
    CHECK_EQ(*p, 0xfeedface);
    CHECK(c.lo <= (uintptr_t)&local && (uintptr_t)&local < c.hi);

    CHECK_OK(checked_recurse(4000));
    CHECK_OK(gs_get_stack_info(&c));
    CHECK(c.size >= 4u << 20);

    CHECK_OK(gs_systemstack(in_systemstack, &rc));
    CHECK_OK(rc);
    printf("ok: GS_STACK_CHECK fast and slow paths, stack now %zu bytes after %" PRIu64 " grows\n",
           c.size, c.grows);
}

/* The default window: 100 KiB fit without a move. */
static void windowed(void *arg) {
    gs_stack_info a, b;
    (void)arg;
    CHECK_OK(gs_get_stack_info(&a));
    CHECK_EQ(a.size, 256 * 1024);
    CHECK_OK(GS_STACK_CHECK(100 * 1024));
    CHECK_OK(gs_get_stack_info(&b));
    CHECK_EQ(b.lo, a.lo);
    CHECK_EQ(b.grows, 0);
}

static void limited(void *arg) {
    gs_stack_info a, b;
    (void)arg;
    CHECK_OK(gs_get_stack_info(&a));
    CHECK_RC(GS_STACK_CHECK(2u << 20), GS_ENOMEM);
    CHECK_RC(gs_stack_check((size_t)1 << 40), GS_ENOMEM);
    CHECK_OK(gs_get_stack_info(&b));
    CHECK_EQ(a.lo, b.lo);
    CHECK_EQ(b.grows, 0);
    CHECK_OK(GS_STACK_CHECK(512 * 1024)); /* within the 1 MiB limit */
    printf("ok: past max_stack_size GS_STACK_CHECK says GS_ENOMEM and moves nothing\n");
}

int main(void) {
    gs_attr a;
    gs_test_begin(60);
    CHECK_OK(GS_STACK_CHECK(1u << 30));
    CHECK_OK(gs_stack_check(1u << 30));
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 32 * 1024;
    CHECK_ID(gs_spawn_with(&a, body, NULL));
    CHECK_ID(gs_spawn(windowed, NULL));
    CHECK_OK(gs_attr_init(&a));
    a.max_stack_size = 1u << 20;
    CHECK_ID(gs_spawn_with(&a, limited, NULL));
    CHECK_OK(gs_run());
    return 0;
}
