/* Issue 20 items 11 and 12: edges of the C API.
 * - the header can be included twice (GS_STACK_CHECK's part had no include guard);
 * - GS_STACK_CHECK(bytes) does not wrap for huge `bytes` (it said "room");
 * - gs_chan_new refuses capacities gs_chan_cap cannot report (1 << 63, SIZE_MAX: negative caps);
 * - gs_select checks `dir` on NULL-channel cases too;
 * - gs_dump to a closed descriptor is GS_EINVAL, not GS_OK;
 * - running out of memory for a goroutine's first stack prints Go's `fatal error: out of memory`
 *   (was: `runtime: runtime: ...`, `unexpected runtime state`, `stack=[0x0, 0x0)`);
 * - gs_exit() in gs_main's goroutine does not return from gs_main: the others run on, then Go's
 *   `no goroutines (main called ...) - deadlock!` and exit status 2. */
#include "gs_test.h"
#include <gostack.h> /* twice on purpose */
#include "gostack.h"

#include <sys/resource.h>

static void huge_checks(void *arg) {
    (void)arg;
    CHECK_RC(GS_STACK_CHECK(SIZE_MAX), GS_ENOMEM);
    CHECK_RC(GS_STACK_CHECK((size_t)1 << 62), GS_ENOMEM);
    CHECK_RC(GS_STACK_CHECK(~(size_t)0 - 4096), GS_ENOMEM);
    CHECK_OK(GS_STACK_CHECK(1024));
}

static void channels_select_dump(void) {
    CHECK(gs_chan_new(0, (size_t)1 << 63) == NULL);
    CHECK(gs_chan_new(0, SIZE_MAX) == NULL);
    CHECK(gs_chan_new(1, SIZE_MAX) == NULL);
    gs_chan *c = gs_chan_new(0, (size_t)INT64_MAX);
    CHECK(c != NULL);
    CHECK_EQ(gs_chan_cap(c), INT64_MAX);
    int v = 0;
    gs_case bad[2] = {{NULL, 77, &v, 99}, {c, GS_CASE_RECV, NULL, 99}};
    CHECK_RC(gs_select(bad, 2, 0), GS_EINVAL);
    CHECK_RC(gs_select(bad, 1, -1), GS_EINVAL);
    CHECK_OK(gs_chan_free(c));

    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    close(fds[1]);
    CHECK_RC(gs_dump(fds[1]), GS_EINVAL);
    CHECK_RC(gs_dump(-1), GS_EINVAL);
}

/* ---- out of memory at a goroutine's first run (child) ----------------------------------------- */
static void never_runs(void *arg) { (void)arg; }

static void child_oom(void *arg) {
    (void)arg;
    struct rlimit rl = {(rlim_t)16 << 30, (rlim_t)16 << 30};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    gs_attr a;
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = (size_t)32 << 30; /* a 32 GiB initial reservation cannot fit in 16 GiB */
    a.max_stack_size = (size_t)32 << 30;
    CHECK_ID(gs_spawn_with(&a, never_runs, NULL)); /* may run (and fail) on a worker at once */
    gs_run();
    _exit(0);
}

/* ---- gs_exit in gs_main's goroutine (child) ----------------------------------------------------- */
static void other(void *arg) {
    (void)arg;
    CHECK_OK(gs_sleep(20 * 1000 * 1000));
    fprintf(stderr, "test: the other goroutine ran on\n");
}

static void main_exits(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(other, NULL));
    gs_exit();
    CHECK(0); /* not reached */
}

static void child_goexit(void *arg) {
    (void)arg;
    int rc = gs_main(main_exits, NULL);
    fprintf(stderr, "test: gs_main returned %d\n", rc);
    _exit(0);
}

int main(void) {
    gs_test_begin(60);
    CHECK_ID(gs_spawn(huge_checks, NULL));
    CHECK_OK(gs_run());
    CHECK_OK(GS_STACK_CHECK(SIZE_MAX)); /* outside goroutines: nothing to check */
    channels_select_dump();

    gs_test_child c;
    gs_test_child_run(child_oom, NULL, 20, &c);
    gs_test_current_child = &c;
    CHECK(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT);
    CHECK(gs_test_contains(c.err, "\nfatal error: out of memory\n"));
    CHECK(!gs_test_contains(c.err, "runtime: runtime:"));
    CHECK(!gs_test_contains(c.err, "unexpected runtime state"));
    CHECK(!gs_test_contains(c.err, "stack=[0x0, 0x0)"));
    /* "runtime: cannot allocate a N-byte stack for goroutine G", then "goroutine G [running" */
    const char *at = strstr(c.err, "stack for goroutine ");
    CHECK(at != NULL);
    int64_t id = strtoll(at + strlen("stack for goroutine "), NULL, 10);
    CHECK(id > 0);
    char dump[64];
    snprintf(dump, sizeof dump, "goroutine %" PRId64 " [running", id);
    CHECK(gs_test_contains(c.err, dump));
    free(c.err);

    gs_test_child_run(child_goexit, NULL, 20, &c);
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 2);
    CHECK(gs_test_contains(c.err, "test: the other goroutine ran on"));
    CHECK(gs_test_contains(c.err, "fatal error: no goroutines (main called gs_exit) - deadlock!"));
    CHECK(!gs_test_contains(c.err, "gs_main returned"));
    free(c.err);
    gs_test_current_child = NULL;
    printf("api_edges: header twice, huge GS_STACK_CHECK, channel caps, select dir, dump fd, OOM and main gs_exit messages\n");
    return 0;
}
