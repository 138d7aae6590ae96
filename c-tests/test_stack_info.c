/*
 * test_stack_info: gs_get_stack_info() describes the calling goroutine's stack.
 *  - lo < &local < hi, size == hi - lo, 0 < used < size, and used covers the caller's frame;
 *  - kind is what the attributes asked for (default GROWABLE, FIXED); a FIXED stack is at least
 *    stack_size and does not move or change across yields; grows == shrinks == 0 for a fresh stack;
 *  - used grows by at least the frame of a nested call with a 2 KiB buffer;
 *  - two goroutines alive at the same time have disjoint stacks;
 *  - gs_stack_check(1 KiB) succeeds inside a goroutine.
 */
#include "gs_test.h"

typedef struct {
    uint32_t want_kind;
    size_t want_size;    /* FIXED: requested size; 0 = do not check */
    gs_stack_info first; /* as seen at the start */
    gs_stack_info later; /* after the yield: all four goroutines are alive */
    int done;
} case_t;

static case_t cases[4];

GS_TEST_REAL_STACK static GS_TEST_NOINLINE size_t used_in_callee(volatile char *sink) {
    volatile char buf[2048];
    gs_stack_info si;
    buf[0] = 1;
    buf[sizeof buf - 1] = sink[0];
    CHECK_OK(gs_get_stack_info(&si));
    CHECK(si.lo <= (uintptr_t)buf && (uintptr_t)buf < si.hi);
    return si.used + (size_t)buf[0] - 1;
}

static void check_info(const gs_stack_info *si, uintptr_t local) {
    CHECK(si->lo < si->hi);
    CHECK_EQ(si->size, si->hi - si->lo);
    CHECK(si->lo <= local && local < si->hi);
    CHECK(si->used > 0 && si->used < si->size);
    CHECK(si->used >= si->hi - local); /* the caller's sp is at or below its locals */
    CHECK(si->used < si->hi - local + 64 * 1024);
}

GS_TEST_REAL_STACK static void fn(void *p) {
    case_t *c = p;
    volatile char local = 0;
    gs_stack_info si, again;
    size_t deeper;

    CHECK_OK(gs_get_stack_info(&si));
    check_info(&si, (uintptr_t)&local);
    CHECK_EQ(si.kind, c->want_kind);
    CHECK_EQ(si.grows, 0);
    CHECK_EQ(si.shrinks, 0);
    if (c->want_size != 0) {
        CHECK(si.size >= c->want_size);
        CHECK(si.size < 2 * c->want_size);
    }
    c->first = si;

    deeper = used_in_callee(&local);
    CHECK(deeper >= si.used + 2048);

    CHECK_OK(gs_stack_check(1024));
    CHECK_OK(gs_yield());

    CHECK_OK(gs_get_stack_info(&again));
    check_info(&again, (uintptr_t)&local);
    CHECK_EQ(again.kind, c->want_kind);
    if (c->want_kind == GS_STACK_FIXED) {
        CHECK_EQ(again.lo, si.lo);
        CHECK_EQ(again.hi, si.hi);
        CHECK_EQ(again.grows, 0);
    }
    c->later = again;
    c->done = 1;
}

int main(void) {
    gs_attr a;

    gs_test_begin(100);

    cases[0].want_kind = GS_STACK_GROWABLE;
    CHECK_ID(gs_spawn(fn, &cases[0]));

    CHECK_OK(gs_attr_init(&a));
    a.stack_kind = GS_STACK_FIXED;
    a.stack_size = 64 * 1024;
    cases[1].want_kind = GS_STACK_FIXED;
    cases[1].want_size = 64 * 1024;
    CHECK_ID(gs_spawn_with(&a, fn, &cases[1]));

    a.stack_size = 256 * 1024;
    cases[2].want_kind = GS_STACK_FIXED;
    cases[2].want_size = 256 * 1024;
    CHECK_ID(gs_spawn_with(&a, fn, &cases[2]));

    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 64 * 1024;
    cases[3].want_kind = GS_STACK_GROWABLE;
    CHECK_ID(gs_spawn_with(&a, fn, &cases[3]));

    CHECK_OK(gs_run());

    for (int i = 0; i < 4; i++) {
        CHECK_EQ(cases[i].done, 1);
        for (int j = 0; j < i; j++) {
            /* all four were alive at once (after everyone's yield), so their stacks are disjoint */
            const gs_stack_info *x = &cases[i].later, *y = &cases[j].later;
            if (!(x->hi <= y->lo || y->hi <= x->lo))
                fprintf(stderr, "stacks overlap: [%#lx, %#lx) and [%#lx, %#lx)\n", (unsigned long)x->lo,
                        (unsigned long)x->hi, (unsigned long)y->lo, (unsigned long)y->hi);
            CHECK(x->hi <= y->lo || y->hi <= x->lo);
        }
        printf("ok: goroutine %d kind %u stack [%#lx, %#lx) size %zu used %zu\n", i, cases[i].first.kind,
               (unsigned long)cases[i].first.lo, (unsigned long)cases[i].first.hi, cases[i].first.size,
               cases[i].first.used);
    }
    return 0;
}
