/*
 * test_stack_window: the default GROWABLE stack is a 256 KiB window that grows by page faults and
 * never moves while it fits (issue #12).
 *  - a default goroutine recursing through 200 KiB of frames that call libc (snprintf of long
 *    doubles, qsort) moves nothing (gs_stats.stack_moves unchanged, its lo unchanged) and computes
 *    what the same recursion computes on the thread's own stack;
 *  - back at a shallow depth, yields give the deep pages back in place (stack_releases counts it,
 *    committed memory falls, nothing moves: a pointer to a local stays valid without adjustment);
 *  - GS_SPAWN_NOMOVE: gs_stack_check past the window says GS_ENOMEM; recursing past it is a
 *    Go-style fatal error naming the goroutine (in a child);
 *  - GOSTACK_STACKMOVE=log prints each move; =fatal turns a move into the fatal error; a value it
 *    does not know is reported and ignored (children re-executed with the variable set, since the
 *    library reads it when it loads).
 */
#include "gs_test.h"

static int cmp_ld(const void *a, const void *b) {
    long double x = *(const long double *)a, y = *(const long double *)b;
    return (x > y) - (x < y);
}

/* About 1.1 KiB of stack per level, libc in every frame. */
static GS_TEST_NOINLINE uint64_t deep(int depth, size_t *bottom_used) {
    char buf[900];
    long double v[4] = {depth * 1.5L, depth / 3.0L, -depth * 2.25L, 1e300L / (depth + 1)};
    int n = snprintf(buf, sizeof buf, "%d %.20Le %Lg", depth, v[1], v[3]);
    uint64_t h;
    qsort(v, 4, sizeof v[0], cmp_ld);
    h = (uint64_t)n * 31 + (unsigned char)buf[n / 2];
    if (depth > 0) {
        h = h * 1000003 + deep(depth - 1, bottom_used);
    } else if (bottom_used != NULL) {
        gs_stack_info si;
        CHECK_OK(gs_get_stack_info(&si));
        *bottom_used = si.used;
    }
    n = snprintf(buf, sizeof buf, "%.10Lf", v[0] + v[3] / 1e299L);
    return h ^ (uint64_t)n ^ (unsigned char)buf[1];
}

#define LEVELS 190

static uint64_t on_thread;

static void in_window(void *arg) {
    gs_stats s0, s1, s2;
    gs_stack_info a, b;
    size_t used = 0;
    volatile int local = 42;
    volatile int *p = &local;
    (void)arg;
    CHECK_OK(gs_get_stats(&s0));
    CHECK_OK(gs_get_stack_info(&a));
    CHECK_EQ(a.size, 256 * 1024);
    CHECK_EQ(deep(LEVELS, &used), on_thread);
    CHECK(used >= 200 * 1024);
    CHECK(used < 256 * 1024);
    CHECK_OK(gs_get_stats(&s1));
    CHECK_EQ(s1.stack_moves - s0.stack_moves, 0);
    CHECK_OK(gs_get_stack_info(&b));
    CHECK_EQ(b.lo, a.lo);
    CHECK_EQ(b.grows, 0);
    printf("ok: %zu bytes deep in the default window with libc calls, 0 moves\n", used);

    /* Shallow again: yields release the deep pages in place (every 1021st yield on an M looks;
     * not under valgrind, where the probe below a stack pointer would be an invalid read). */
    for (int i = 0; i < 8192; i++) CHECK_OK(gs_yield());
    if (getenv("GS_TEST_UNDER_VALGRIND") != NULL) return;
    CHECK_OK(gs_get_stats(&s2));
    CHECK_OK(gs_get_stack_info(&b));
    CHECK(s2.stack_releases > s1.stack_releases);
    CHECK_EQ(s2.stack_moves, s1.stack_moves);
    CHECK_EQ(b.lo, a.lo);
    CHECK_EQ(b.shrinks, 0);
    CHECK(p == &local && *p == 42);
    CHECK(s2.stack_committed + 128 * 1024 <= s1.stack_committed);
    printf("ok: released in place: committed %" PRIu64 " -> %" PRIu64 " bytes, %" PRIu64 " releases\n",
           s1.stack_committed, s2.stack_committed, s2.stack_releases - s1.stack_releases);
}

static void yielder(void *arg) {
    (void)arg;
    for (int i = 0; i < 8192; i++) CHECK_OK(gs_yield());
}

static void nomove_check(void *arg) {
    gs_stack_info a, b;
    (void)arg;
    CHECK_OK(gs_get_stack_info(&a));
    CHECK_RC(gs_stack_check(512 * 1024), GS_ENOMEM);
    CHECK_RC(GS_STACK_CHECK(300 * 1024), GS_ENOMEM);
    CHECK_OK(GS_STACK_CHECK(100 * 1024));
    CHECK_OK(gs_get_stack_info(&b));
    CHECK_EQ(a.lo, b.lo);
    CHECK_EQ(b.grows, 0);
}

/* ---- children ---------------------------------------------------------------------------- */

static void too_deep(void *arg) {
    (void)arg;
    printf("%" PRIu64 "\n", deep(400, NULL)); /* ~440 KiB: past the window */
}

static void spawn_too_deep(void *flags) {
    gs_attr a;
    CHECK_OK(gs_attr_init(&a));
    a.flags = (uint32_t)(uintptr_t)flags;
    a.name = "diver";
    CHECK_ID(gs_spawn_with(&a, too_deep, NULL));
    CHECK_OK(gs_run());
}

static char self_exe[4096];

/* Re-executes this program with GOSTACK_STACKMOVE=value, running spawn_too_deep(0) there. */
static void exec_with_stackmove(void *value) {
    char env[128];
    snprintf(env, sizeof env, "GOSTACK_STACKMOVE=%s", (const char *)value);
    CHECK(putenv(env) == 0);
    execl(self_exe, self_exe, "--too-deep", (char *)NULL);
    _exit(121);
}

static void expect_fatal(const gs_test_child *c, const char *why) {
    gs_test_current_child = c;
    CHECK(WIFSIGNALED(c->status) || (WIFEXITED(c->status) && WEXITSTATUS(c->status) != 0));
    CHECK(gs_test_contains(c->err, "stack must not move"));
    CHECK(gs_test_contains(c->err, why));
    CHECK(gs_test_contains(c->err, "fatal error:"));
    CHECK(gs_test_contains(c->err, "diver"));
    gs_test_current_child = NULL;
}

int main(int argc, char **argv) {
    gs_test_child c;
    gs_attr a;
    ssize_t n;
    if (argc == 2 && strcmp(argv[1], "--too-deep") == 0) {
        spawn_too_deep(0);
        return 0;
    }
    gs_test_begin(120);
    n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    CHECK(n > 0);
    self_exe[n] = '\0';

    on_thread = deep(LEVELS, NULL);
    CHECK_ID(gs_spawn(in_window, NULL));
    CHECK_ID(gs_spawn(yielder, NULL));
    CHECK_OK(gs_attr_init(&a));
    a.flags = GS_SPAWN_NOMOVE;
    CHECK_ID(gs_spawn_with(&a, nomove_check, NULL));
    CHECK_OK(gs_run());
    printf("ok: GS_SPAWN_NOMOVE: gs_stack_check past the window says GS_ENOMEM\n");

    gs_test_child_run(spawn_too_deep, (void *)(uintptr_t)GS_SPAWN_NOMOVE, 60, &c);
    expect_fatal(&c, "GS_SPAWN_NOMOVE");
    free(c.err);
    printf("ok: GS_SPAWN_NOMOVE past the window is a fatal error\n");

    gs_test_child_run(exec_with_stackmove, "fatal", 60, &c);
    expect_fatal(&c, "GOSTACK_STACKMOVE=fatal");
    free(c.err);
    printf("ok: GOSTACK_STACKMOVE=fatal\n");

    gs_test_child_run(exec_with_stackmove, "log", 60, &c);
    gs_test_current_child = &c;
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    CHECK(gs_test_contains(c.err, "stack moved (grow): 262144 -> 524288 bytes"));
    CHECK(gs_test_mentions_goroutine(c.err, 1));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: GOSTACK_STACKMOVE=log prints the move\n");

    gs_test_child_run(exec_with_stackmove, "sometimes", 60, &c);
    gs_test_current_child = &c;
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    CHECK(gs_test_contains(c.err, "not understood"));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: an unknown GOSTACK_STACKMOVE value is reported and ignored\n");
    return 0;
}
