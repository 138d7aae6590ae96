/*
 * test_stack_overflow: overflowing a FIXED stack is a clear fatal error.
 * In a forked child, a goroutine with a FIXED stack recurses forever through a non-inlinable
 * function with a volatile local buffer. The parent checks that the child died of SIGABRT and
 * that its stderr says "fatal error: stack overflow", names the overflowing goroutine
 * ("goroutine <id>") and shows the stack bounds (the hex top of the stack as gs_get_stack_info
 * reported it inside that goroutine). Two cases: a lone 64 KiB goroutine on its first run, and
 * a 128 KiB goroutine that overflows after yielding, among other goroutines.
 */
#include "gs_test.h"

#include <sys/mman.h>

typedef struct {
    int64_t id;          /* id of the goroutine that overflows */
    int64_t self;        /* gs_self() inside it */
    uintptr_t lo, hi;    /* its stack, from gs_get_stack_info */
    size_t stack_size;
    int with_others;
    int reached_recursion;
} shared_info;

static shared_info *shared; /* MAP_SHARED: written by the child, read by the parent */

static GS_TEST_NOINLINE size_t recurse(volatile char *prev, size_t depth) {
    volatile char buf[256];
    buf[0] = (char)depth;
    buf[255] = prev != NULL ? prev[0] : 0;
    if (depth == SIZE_MAX) return 0; /* never; keeps the compiler from proving non-termination */
    return recurse(buf, depth + 1) + (size_t)buf[255];
}

static void overflow_fn(void *p) {
    gs_stack_info si;
    (void)p;
    shared->self = gs_self();
    if (gs_get_stack_info(&si) == GS_OK) {
        shared->lo = si.lo;
        shared->hi = si.hi;
    }
    if (shared->with_others) {
        (void)gs_yield();
        (void)gs_yield();
    }
    shared->reached_recursion = 1;
    (void)recurse(NULL, 0);
}

static void bystander(void *p) {
    (void)p;
    for (int i = 0; i < 10; i++) (void)gs_yield();
}

/* Runs in the forked child; must not return (the runtime aborts it). */
static void child(void *p) {
    gs_attr a;
    (void)p;
    if (gs_attr_init(&a) != GS_OK) _exit(10);
    a.stack_kind = GS_STACK_FIXED;
    a.stack_size = shared->stack_size;
    if (shared->with_others) {
        if (gs_spawn(bystander, NULL) <= 0) _exit(11);
        if (gs_spawn(bystander, NULL) <= 0) _exit(11);
    }
    shared->id = gs_spawn_with(&a, overflow_fn, NULL);
    if (shared->id <= 0) _exit(12);
    if (shared->with_others && gs_spawn(bystander, NULL) <= 0) _exit(11);
    (void)gs_run();
    fprintf(stderr, "test: gs_run returned after the stack overflow\n");
    _exit(13);
}

static void run_case(size_t stack_size, int with_others) {
    gs_test_child c;
    char hi_hex[32];

    memset(shared, 0, sizeof *shared);
    shared->stack_size = stack_size;
    shared->with_others = with_others;
    gs_test_child_run(child, NULL, 60, &c);
    gs_test_current_child = &c;

    CHECK(shared->id > 0);
    CHECK_EQ(shared->self, shared->id);
    CHECK_EQ(shared->reached_recursion, 1);
    CHECK(shared->hi > shared->lo);
    CHECK(shared->hi - shared->lo >= stack_size);
    CHECK(WIFSIGNALED(c.status));
    CHECK_EQ(WTERMSIG(c.status), SIGABRT);
    CHECK(strstr(c.err, "fatal error: stack overflow") != NULL);
    CHECK(gs_test_mentions_goroutine(c.err, shared->id));
    snprintf(hi_hex, sizeof hi_hex, "%" PRIxPTR, shared->hi);
    CHECK(gs_test_contains(c.err, hi_hex)); /* the stack bounds are shown */

    printf("ok: FIXED %zu KiB stack overflow of goroutine %" PRId64 " aborted the child; it said:\n%s",
           stack_size / 1024, shared->id, c.err);
    gs_test_current_child = NULL;
    free(c.err);
}

int main(void) {
    gs_test_begin(100);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);

    run_case(64 * 1024, 0);
    run_case(128 * 1024, 1);
    return 0;
}
