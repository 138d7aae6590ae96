/*
 * test_systemstack: gs_systemstack(fn, arg) runs fn on the OS thread's own stack (g0).
 *  - outside goroutines it is a direct call on the current stack (fn's local lies just below the
 *    caller's local), returns GS_OK, and fn's writes are visible afterwards;
 *  - inside a goroutine (GROWABLE and FIXED), a local of fn lies inside the thread's stack as
 *    pthread_getattr_np reports it and outside the goroutine's [lo, hi) from gs_get_stack_info,
 *    while the goroutine's own local lies inside [lo, hi);
 *  - fn may use far more stack than the goroutine has (512 KiB from a 64 KiB FIXED goroutine);
 *  - a nested gs_systemstack inside fn is a direct call on the same stack;
 *  - inside fn: gs_yield() and gs_run() return GS_ESTATE; gs_systemstack(NULL) is GS_EINVAL;
 *  - after it returns the goroutine is back on its own stack and keeps yielding normally.
 */
#include "gs_test.h"

typedef struct {
    uintptr_t local;         /* address of a local of fn */
    uintptr_t nested_local;  /* address of a local of the nested fn */
    uintptr_t thread_lo, thread_hi;
    int yield_rc, run_rc, null_rc, nested_rc;
    int value;
    int big_done;
} ss_ctx;

static ss_ctx ctx[3];
static int other_steps;

static GS_TEST_NOINLINE void use_big_stack(ss_ctx *c) {
    volatile char big[512 * 1024];
    for (size_t i = 0; i < sizeof big; i += 4096) big[i] = (char)i;
    big[sizeof big - 1] = 1;
    c->big_done = big[0] + big[sizeof big - 1];
}

GS_TEST_REAL_STACK static void nested(void *p) {
    volatile char local = 0;
    ss_ctx *c = p;
    c->nested_local = (uintptr_t)&local;
}

GS_TEST_REAL_STACK static void on_g0(void *p) {
    volatile char local = 0;
    ss_ctx *c = p;
    c->local = (uintptr_t)&local;
    gs_test_thread_stack(&c->thread_lo, &c->thread_hi);
    c->yield_rc = gs_yield();
    c->run_rc = gs_run();
    c->null_rc = gs_systemstack(NULL, c);
    c->nested_rc = gs_systemstack(nested, c);
    use_big_stack(c);
    c->value = 42;
}

GS_TEST_REAL_STACK static void in_goroutine(void *p) {
    ss_ctx *c = p;
    volatile char local = 0;
    uintptr_t me = (uintptr_t)&local;
    gs_stack_info si;

    CHECK_OK(gs_get_stack_info(&si));
    CHECK(si.lo <= me && me < si.hi);
    CHECK_OK(gs_yield()); /* run while others are parked mid-yield */

    CHECK_OK(gs_systemstack(on_g0, c));
    CHECK_EQ(c->value, 42);
    CHECK_EQ(c->big_done, 1);
    CHECK_RC(c->yield_rc, GS_ESTATE);
    CHECK_RC(c->run_rc, GS_ESTATE);
    CHECK_RC(c->null_rc, GS_EINVAL);
    CHECK_OK(c->nested_rc);
    /* fn ran on the thread's stack, not on the goroutine's */
    CHECK(c->thread_lo <= c->local && c->local < c->thread_hi);
    CHECK(c->local < si.lo || c->local >= si.hi);
    /* the nested call was direct: same stack, just below */
    CHECK(c->nested_local < c->local && c->local - c->nested_local < 64 * 1024);

    /* back on the goroutine's stack */
    CHECK_OK(gs_get_stack_info(&si));
    CHECK(si.lo <= me && me < si.hi);
    CHECK_OK(gs_yield());
    CHECK(gs_self() > 0);
}

static void other(void *p) {
    (void)p;
    for (int i = 0; i < 5; i++) {
        other_steps++;
        CHECK_OK(gs_yield());
    }
}

GS_TEST_REAL_STACK static void direct(void *p) {
    volatile char local = 0;
    ss_ctx *c = p;
    c->local = (uintptr_t)&local;
    gs_test_thread_stack(&c->thread_lo, &c->thread_hi);
    c->nested_rc = gs_systemstack(nested, c);
    c->value = 7;
}

GS_TEST_REAL_STACK int main(void) {
    volatile char local = 0;
    uintptr_t me = (uintptr_t)&local;
    gs_attr fixed;

    gs_test_begin(100);

    /* Outside a goroutine: a direct call. */
    CHECK_RC(gs_systemstack(NULL, NULL), GS_EINVAL);
    CHECK_OK(gs_systemstack(direct, &ctx[0]));
    CHECK_EQ(ctx[0].value, 7);
    CHECK_OK(ctx[0].nested_rc);
    CHECK(ctx[0].thread_lo <= me && me < ctx[0].thread_hi);
    CHECK(ctx[0].local < me && me - ctx[0].local < 64 * 1024);
    CHECK(ctx[0].nested_local < ctx[0].local && ctx[0].local - ctx[0].nested_local < 64 * 1024);
    printf("ok: outside goroutines gs_systemstack is a direct call\n");

    CHECK_OK(gs_attr_init(&fixed));
    fixed.stack_kind = GS_STACK_FIXED;
    fixed.stack_size = 64 * 1024;
    CHECK_ID(gs_spawn(in_goroutine, &ctx[1]));
    CHECK_ID(gs_spawn(other, NULL));
    CHECK_ID(gs_spawn_with(&fixed, in_goroutine, &ctx[2]));
    CHECK_OK(gs_run());
    CHECK_EQ(ctx[1].value, 42);
    CHECK_EQ(ctx[2].value, 42);
    CHECK_EQ(other_steps, 5);
    printf("ok: inside goroutines fn runs on the thread stack (%#lx..%#lx)\n",
           (unsigned long)ctx[1].thread_lo, (unsigned long)ctx[1].thread_hi);
    return 0;
}
