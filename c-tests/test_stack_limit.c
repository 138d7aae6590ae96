/*
 * test_stack_limit: a GROWABLE stack grows up to its goroutine's max_stack_size and no further.
 * In forked children, a goroutine recurses forever (plain C: guard-fault growth) with
 *  - max_stack_size = 1 MiB, and
 *  - max_stack_size = 4 MiB, after yielding among other goroutines, growing by GS_STACK_CHECK;
 * the child must die of SIGABRT saying Go's "runtime: goroutine N stack exceeds LIMIT-byte limit"
 * with LIMIT = max_stack_size and N its id, then "fatal error: stack overflow"; before dying it
 * must have reached at least half the limit (the stack really grew up to it).
 */
#include "gs_test.h"

#include <sys/mman.h>

typedef struct {
    int64_t id;
    size_t limit;
    int use_check;
    size_t max_used;
} shared_info;

static shared_info *shared;

static GS_TEST_NOINLINE size_t recurse(volatile char *prev, size_t depth) {
    volatile char buf[512];
    buf[0] = (char)depth;
    buf[511] = prev != NULL ? prev[0] : 0;
    if (shared->use_check) (void)GS_STACK_CHECK(1024);
    if (depth % 64 == 0) {
        gs_stack_info si;
        if (gs_get_stack_info(&si) == GS_OK && si.used > shared->max_used) shared->max_used = si.used;
    }
    if (depth == SIZE_MAX) return 0;
    return recurse(buf, depth + 1) + (size_t)buf[511];
}

static void overflow_fn(void *p) {
    (void)p;
    if (shared->use_check) {
        (void)gs_yield();
        (void)gs_yield();
    }
    (void)recurse(NULL, 0);
}

static void bystander(void *p) {
    (void)p;
    for (int i = 0; i < 10; i++) (void)gs_yield();
}

static void child(void *p) {
    gs_attr a;
    (void)p;
    if (gs_attr_init(&a) != GS_OK) _exit(10);
    a.max_stack_size = shared->limit;
    if (shared->use_check && gs_spawn(bystander, NULL) <= 0) _exit(11);
    shared->id = gs_spawn_with(&a, overflow_fn, NULL);
    if (shared->id <= 0) _exit(12);
    if (shared->use_check && gs_spawn(bystander, NULL) <= 0) _exit(11);
    (void)gs_run();
    fprintf(stderr, "test: gs_run returned after the stack overflow\n");
    _exit(13);
}

static void run_case(size_t limit, int use_check) {
    gs_test_child c;
    char want[128];
    memset(shared, 0, sizeof *shared);
    shared->limit = limit;
    shared->use_check = use_check;
    gs_test_child_run(child, NULL, 60, &c);
    gs_test_current_child = &c;
    CHECK(shared->id > 0);
    CHECK(WIFSIGNALED(c.status));
    CHECK_EQ(WTERMSIG(c.status), SIGABRT);
    snprintf(want, sizeof want, "runtime: goroutine %" PRId64 " stack exceeds %zu-byte limit", shared->id, limit);
    CHECK(strstr(c.err, want) != NULL);
    CHECK(strstr(c.err, "fatal error: stack overflow") != NULL);
    CHECK(shared->max_used >= limit / 2);
    CHECK(shared->max_used <= limit);
    printf("ok: limit %zu (%s): reached %zu bytes, then the child said:\n%s", limit,
           use_check ? "GS_STACK_CHECK" : "guard faults", shared->max_used, c.err);
    gs_test_current_child = NULL;
    free(c.err);
}

int main(void) {
    gs_test_begin(100);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    run_case(1u << 20, 0);
    run_case(4u << 20, 1);
    return 0;
}
