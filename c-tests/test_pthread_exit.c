/* Issue 20 item 7: pthread_exit inside a goroutine, and pthread_cancel of a thread inside gs_run.
 *
 * - pthread_exit in a goroutine takes the goroutine's stack and the thread's P away: a Go-style
 *   fatal error naming the goroutine (before: the runtime wedged, a later gs_run hung, gs_dump
 *   showed a goroutine running on a dead thread). Run in a child process.
 * - pthread_cancel of a thread inside gs_run is deferred until it left the scheduler (cancellation
 *   is disabled in there): the goroutine blocked in read() (a cancellation point) completes,
 *   gs_run returns, the thread is cancelled at its next cancellation point, and the runtime goes
 *   on working. */
#include "gs_test.h"

static volatile int64_t exiting_goid;

static void exits_thread(void *arg) {
    (void)arg;
    exiting_goid = gs_self();
    fprintf(stderr, "test: goroutine %" PRId64 " calls pthread_exit\n", gs_self());
    pthread_exit(NULL);
}

static void *run_thread(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(exits_thread, NULL));
    gs_run();
    return NULL;
}

static void noop(void *arg) { (void)arg; }

static void child_pthread_exit(void *arg) {
    (void)arg;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    /* Not reached with the fix (the exit is fatal). Before it: this run hung. */
    CHECK_ID(gs_spawn(noop, NULL));
    CHECK_OK(gs_run());
    _exit(0);
}

/* ---- cancellation ---------------------------------------------------------------------------- */

static int pipefd[2];
static volatile int reader_done;
static volatile int reader_started; /* the target has spawned it and is at or in gs_run */

static void reader(void *arg) {
    (void)arg;
    char c;
    __atomic_store_n(&reader_started, 1, __ATOMIC_RELEASE);
    /* A raw blocking read: a cancellation point, on the thread that runs gs_run (P=1) or a
     * worker. */
    CHECK(read(pipefd[0], &c, 1) == 1);
    reader_done = 1;
}

static void *cancel_target(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(reader, NULL));
    CHECK_OK(gs_run());
    CHECK(reader_done);
    /* The cancellation is acted on now. */
    for (;;) pthread_testcancel();
    return NULL;
}

static void child_cancel(void *arg) {
    (void)arg;
    CHECK(pipe(pipefd) == 0);
    pthread_t t;
    void *ret = NULL;
    CHECK(pthread_create(&t, NULL, cancel_target, NULL) == 0);
    /* Not a fixed sleep: a slow start (qemu, a loaded machine) must not see the cancellation
     * before the reader exists. The target is then in gs_run (one P: the reader runs there) or
     * about to enter it with no cancellation point on the way; the reader blocks in read(). */
    while (!__atomic_load_n(&reader_started, __ATOMIC_ACQUIRE)) usleep(1000);
    usleep(20 * 1000);
    CHECK(pthread_cancel(t) == 0);
    usleep(50 * 1000);
    CHECK(write(pipefd[1], "x", 1) == 1);
    CHECK(pthread_join(t, &ret) == 0);
    CHECK(ret == PTHREAD_CANCELED);
    /* The runtime is intact. */
    CHECK_ID(gs_spawn(noop, NULL));
    CHECK_OK(gs_run());
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    CHECK_EQ(st.goroutines_live, 0);
    _exit(0);
}

int main(void) {
    gs_test_begin(60);
    gs_test_child c;

    gs_test_child_run(child_pthread_exit, NULL, 20, &c);
    gs_test_current_child = &c;
    CHECK(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT);
    CHECK(gs_test_contains(c.err, "fatal error: thread exited inside the scheduler"));
    CHECK(gs_test_contains(c.err, "pthread_exit"));
    int64_t goid = 0;
    const char *at = strstr(c.err, "test: goroutine ");
    CHECK(at != NULL);
    goid = strtoll(at + strlen("test: goroutine "), NULL, 10);
    CHECK(goid > 0);
    CHECK(gs_test_mentions_goroutine(strstr(c.err, "runtime:"), goid));
    printf("pthread_exit: fatal error naming goroutine %" PRId64 "\n", goid);
    free(c.err);

    gs_test_child_run(child_cancel, NULL, 20, &c);
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    printf("cancel: deferred until gs_run returned; the runtime still works\n");
    free(c.err);
    gs_test_current_child = NULL;
    return 0;
}
