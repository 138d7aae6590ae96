/*
 * gs_test.h: the tiny harness shared by the C tests (libdill style: one program per feature,
 * assertions that print file:line, the expression and, for status codes, gs_strerror()).
 *
 * Include it first in every test (it defines _GNU_SOURCE before any system header).
 *
 *   CHECK(cond)          cond must be true
 *   CHECK_OK(expr)       expr must return GS_OK; prints the code and gs_strerror(code) otherwise
 *   CHECK_RC(expr, want) expr must return the status code `want`; prints both codes by name
 *   CHECK_EQ(a, b)       a == b (compared as 64-bit integers); prints both values
 *   CHECK_ID(expr)       expr (gs_spawn*) must return an id > 0; evaluates to that id
 *
 * A failed check prints one line to stderr and calls abort(), also inside a goroutine. Test
 * programs exit 0 on success. Helpers: gs_test_child_run() runs a function in a forked child and
 * captures its stderr and wait status; gs_test_thread_stack() gives the calling OS thread's stack.
 *
 * The tests are written for one P (tests/c_tests.rs runs them with GOSTACK_MAXPROCS=1): spawned
 * goroutines wait for gs_run/gs_main and yields are FIFO. Those it also runs at 2 and 4 Ps
 * (`multi_p_tests!`) may not rely on either: a goroutine spawned before gs_run can start at once
 * on another thread, in any order; gs_test_wait_parked() waits until one has blocked.
 */
#ifndef GS_TEST_H
#define GS_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <gostack.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define GS_TEST_UNUSED __attribute__((unused))
#define GS_TEST_NOINLINE __attribute__((noinline))

/*
 * GS_TEST_REAL_STACK: for a function that checks where its own locals lie (on the goroutine's
 * stack, on the thread's). Built with AddressSanitizer (.ci/asan.sh), such a function is not
 * instrumented: with ASAN_OPTIONS=detect_stack_use_after_return=1 every local whose address is
 * taken lives in a "fake frame" that ASan allocates elsewhere, by design. Empty otherwise.
 */
#if defined(__SANITIZE_ADDRESS__)
#define GS_TEST_REAL_STACK __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GS_TEST_REAL_STACK __attribute__((no_sanitize_address))
#endif
#endif
#ifndef GS_TEST_REAL_STACK
#define GS_TEST_REAL_STACK
#endif

/* Set by gs_test_child_run's callers so that a failing check also shows what the child printed. */
struct gs_test_child;
static const struct gs_test_child *gs_test_current_child GS_TEST_UNUSED;
static void gs_test_child_dump(const struct gs_test_child *c) GS_TEST_UNUSED;

static __attribute__((noreturn, format(printf, 3, 4))) void gs_test_fail(const char *file, int line,
                                                                         const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " [goroutine %" PRId64 "]\n", gs_self());
    if (gs_test_current_child != NULL) gs_test_child_dump(gs_test_current_child);
    fflush(stderr);
    abort();
}

/* gs_strerror() of a status, guarded so that a broken gs_strerror cannot hide the failure. */
static GS_TEST_UNUSED const char *gs_test_errname(long long code) {
    const char *s;
    if (code < INT32_MIN || code > INT32_MAX) return "(not an int status)";
    s = gs_strerror((int)code);
    return s != NULL ? s : "(gs_strerror returned NULL)";
}

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) gs_test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);     \
    } while (0)

#define CHECK_RC(expr, want)                                                              \
    do {                                                                                  \
        long long gs_rc_ = (long long)(expr);                                             \
        long long gs_want_ = (long long)(want);                                           \
        if (gs_rc_ != gs_want_)                                                           \
            gs_test_fail(__FILE__, __LINE__, "%s returned %lld (%s), expected %s = %lld (%s)", \
                         #expr, gs_rc_, gs_test_errname(gs_rc_), #want, gs_want_,          \
                         gs_test_errname(gs_want_));                                       \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, GS_OK)

#define CHECK_EQ(a, b)                                                                         \
    do {                                                                                       \
        long long gs_a_ = (long long)(a);                                                      \
        long long gs_b_ = (long long)(b);                                                      \
        if (gs_a_ != gs_b_)                                                                    \
            gs_test_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s) failed: %lld (%#llx) != %lld (%#llx)", \
                         #a, #b, gs_a_, (unsigned long long)gs_a_, gs_b_,                      \
                         (unsigned long long)gs_b_);                                           \
    } while (0)

/* Evaluates to the id; -Wpedantic accepts the statement expression behind __extension__. */
#define CHECK_ID(expr)                                                                         \
    __extension__({                                                                            \
        int64_t gs_id_ = (expr);                                                               \
        if (gs_id_ <= 0)                                                                       \
            gs_test_fail(__FILE__, __LINE__, "%s returned %" PRId64 " (%s), expected an id > 0", \
                         #expr, gs_id_, gs_test_errname(gs_id_));                              \
        gs_id_;                                                                                \
    })

/*
 * Under valgrind (tests/c_tests.rs sets GS_TEST_UNDER_VALGRIND=1 when its runner is valgrind:
 * .ci/valgrind.sh) a test takes a smaller workload through the same code paths: memcheck runs
 * code ~50x slower, and valgrind looks up the registered goroutine stacks in a list on every
 * switch. gs_test_workload(full, light) is `full` natively and `light` there; a test prints the
 * numbers it used.
 */
static GS_TEST_UNUSED int gs_test_under_valgrind(void) {
    const char *v = getenv("GS_TEST_UNDER_VALGRIND");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static GS_TEST_UNUSED long gs_test_workload(long full, long light) {
    return gs_test_under_valgrind() ? light : full;
}

/* Unbuffered stdout and a watchdog, so that a hung test dies with SIGALRM instead of hanging
 * (ten times longer under valgrind). */
static GS_TEST_UNUSED void gs_test_begin(unsigned watchdog_seconds) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(gs_test_under_valgrind() ? 10 * watchdog_seconds : watchdog_seconds);
}

/* [lo, hi) of the calling OS thread's own stack, from pthread_getattr_np. */
static GS_TEST_UNUSED void gs_test_thread_stack(uintptr_t *lo, uintptr_t *hi) {
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    CHECK(pthread_getattr_np(pthread_self(), &attr) == 0);
    CHECK(pthread_attr_getstack(&attr, &addr, &size) == 0);
    pthread_attr_destroy(&attr);
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
}

/* ---- running a function in a forked child ------------------------------------------------ */

typedef struct gs_test_child {
    int status;      /* as from waitpid */
    char *err;       /* everything the child wrote to stderr, NUL-terminated (malloc'd) */
    size_t err_len;
} gs_test_child;

static GS_TEST_UNUSED void gs_test_child_dump(const gs_test_child *c) {
    fprintf(stderr, "---- child wait status %#x", (unsigned)c->status);
    if (WIFEXITED(c->status)) fprintf(stderr, " (exited %d)", WEXITSTATUS(c->status));
    if (WIFSIGNALED(c->status))
        fprintf(stderr, " (killed by signal %d, %s)", WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
    fprintf(stderr, "; its stderr (%zu bytes):\n%s\n---- end of child stderr\n", c->err_len,
            c->err != NULL ? c->err : "");
}

/*
 * Forks; the child runs body(arg) with stderr redirected into a pipe and a watchdog of
 * `timeout_s` seconds, then exit(0)s if body returns. The parent collects the child's stderr
 * and wait status into *out (free out->err when done).
 */
static GS_TEST_UNUSED void gs_test_child_run(void (*body)(void *), void *arg, unsigned timeout_s,
                                             gs_test_child *out) {
    int fds[2];
    pid_t pid;
    size_t cap = 4096;

    fflush(stdout);
    fflush(stderr);
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0) _exit(120);
        close(fds[1]);
        setvbuf(stderr, NULL, _IONBF, 0);
        alarm(timeout_s);
        body(arg);
        exit(0);
    }
    close(fds[1]);
    out->err = malloc(cap);
    CHECK(out->err != NULL);
    out->err_len = 0;
    for (;;) {
        ssize_t n;
        if (cap - out->err_len < 1024) {
            cap *= 2;
            out->err = realloc(out->err, cap);
            CHECK(out->err != NULL);
        }
        n = read(fds[0], out->err + out->err_len, cap - out->err_len - 1);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n >= 0);
        if (n == 0) break;
        out->err_len += (size_t)n;
    }
    out->err[out->err_len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &out->status, 0) < 0) CHECK(errno == EINTR);
}

/* Case-insensitive substring test. */
static GS_TEST_UNUSED int gs_test_contains(const char *hay, const char *needle) {
    return strcasestr(hay, needle) != NULL;
}

/* True if `hay` contains "goroutine <id>" not followed by another digit. */
static GS_TEST_UNUSED int gs_test_mentions_goroutine(const char *hay, int64_t id) {
    char needle[64];
    size_t len;
    const char *p = hay;
    snprintf(needle, sizeof needle, "goroutine %" PRId64, id);
    len = strlen(needle);
    while ((p = strstr(p, needle)) != NULL) {
        if (!isdigit((unsigned char)p[len])) return 1;
        p += len;
    }
    return 0;
}

/* Waits (gs_yield, then short sleeps) until gs_dump shows goroutine `id` parked for `reason`
 * ("chan receive", "select", ...): a goroutine's state is published once it has parked, its
 * channel waiters queued. Tests that also run at several Ps use it where one P's order made
 * "the other goroutine has blocked by now" true. Fails after 60 s. Call it in a goroutine. */
static GS_TEST_UNUSED void gs_test_wait_parked(int64_t id, const char *reason) {
    char want[96];
    snprintf(want, sizeof want, "goroutine %" PRId64 " [%s]", id, reason);
    int fd = memfd_create("gs_test_dump", 0);
    CHECK(fd >= 0);
    for (long tries = 0;; tries++) {
        CHECK(ftruncate(fd, 0) == 0);
        CHECK(lseek(fd, 0, SEEK_SET) == 0); /* gs_dump write()s at the offset */
        CHECK_OK(gs_dump(fd));
        struct stat st;
        CHECK(fstat(fd, &st) == 0);
        char *text = malloc((size_t)st.st_size + 1);
        CHECK(text != NULL);
        ssize_t n = pread(fd, text, (size_t)st.st_size, 0);
        CHECK(n == st.st_size);
        text[n] = '\0';
        int found = strstr(text, want) != NULL;
        free(text);
        if (found) break;
        if (tries < 100) {
            CHECK_OK(gs_yield());
        } else {
            CHECK(tries < 100 + 60 * 1000);
            CHECK_OK(gs_sleep(1000 * 1000));
        }
    }
    close(fd);
}

#endif /* GS_TEST_H */
