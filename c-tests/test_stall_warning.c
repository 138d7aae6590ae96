/* Issue 20 item 5: a goroutine blocked in a raw system call also blocks the goroutines pinned to
 * its thread, however many Ps are idle (a pipe reader and its writer deadlock at P=4). That cannot
 * be undone from outside; the runtime's monitor notices the stall (a thread whose goroutine has not
 * switched for 100 ms while others wait for that thread) and prints one message naming the
 * goroutine, the thread and what to use instead. Here a helper thread reads the process's own
 * stderr, waits for that message, then writes to the pipe to end the stall (before the fix there
 * was no message: the watchdog ended the test). Run in a child process (stderr is redirected). */
#include "gs_test.h"

#include <sys/syscall.h>

static int data[2], err_pipe[2], real_stderr;
static volatile int64_t reader_goid;
static volatile pid_t run_tid;
static char seen[8192];
static size_t seen_len;

static void writer(void *arg) {
    (void)arg;
    /* It ran (so it is pinned to this thread) and is runnable again at once. */
    CHECK_OK(gs_yield());
    CHECK_OK(gs_yield());
}

static void reader(void *arg) {
    (void)arg;
    reader_goid = gs_self();
    CHECK_ID(gs_spawn(writer, NULL));
    CHECK_OK(gs_yield()); /* the writer runs here: pinned to this thread */
    gs_set_maxprocs(4);   /* idle Ps do not help a pinned goroutine */
    char c;
    CHECK(read(data[0], &c, 1) == 1); /* the raw blocking call */
}

static void *watch_stderr(void *arg) {
    (void)arg;
    for (;;) {
        ssize_t n = read(err_pipe[0], seen + seen_len, sizeof seen - 1 - seen_len);
        if (n <= 0) break;
        if (write(real_stderr, seen + seen_len, (size_t)n) < 0) break;
        seen_len += (size_t)n;
        seen[seen_len] = '\0';
        if (strstr(seen, "without switching") != NULL && strchr(strstr(seen, "without switching"), '\n')) {
            CHECK(write(data[1], "x", 1) == 1);
            break;
        }
    }
    return NULL;
}

static void child(void *arg) {
    (void)arg;
    CHECK(pipe(data) == 0 && pipe(err_pipe) == 0);
    real_stderr = dup(STDERR_FILENO);
    CHECK(real_stderr >= 0);
    CHECK(dup2(err_pipe[1], STDERR_FILENO) == STDERR_FILENO);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, watch_stderr, NULL) == 0);
    gs_set_maxprocs(1); /* both goroutines start on this thread */
    run_tid = (pid_t)syscall(SYS_gettid);
    CHECK_ID(gs_spawn(reader, NULL));
    CHECK_OK(gs_run());
    CHECK(pthread_join(t, NULL) == 0);
    dup2(real_stderr, STDERR_FILENO);
    /* The message names the reader, the thread, and what to do. */
    char want[64];
    snprintf(want, sizeof want, "goroutine %" PRId64 " ", (int64_t)reader_goid);
    CHECK(strstr(seen, want) != NULL);
    snprintf(want, sizeof want, "thread %d ", (int)run_tid);
    CHECK(strstr(seen, want) != NULL);
    CHECK(strstr(seen, "GS_SPAWN_MIGRATABLE") != NULL);
    CHECK(strstr(seen, "gs_sleep") != NULL);
    _exit(0);
}

int main(void) {
    gs_test_begin(60);
    gs_test_child c;
    gs_test_child_run(child, NULL, 30, &c);
    gs_test_current_child = &c;
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    /* Once. */
    const char *first = strstr(c.err, "without switching");
    CHECK(first != NULL && strstr(first + 1, "without switching") == NULL);
    gs_test_current_child = NULL;
    printf("stall_warning: reported once:\n%s", c.err);
    free(c.err);
    return 0;
}
