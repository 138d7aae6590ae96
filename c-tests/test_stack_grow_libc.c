/*
 * test_stack_grow_libc: stacks grow inside C library calls. Each case runs in fresh goroutines
 * with an 8 KiB GROWABLE stack, first burning a varying amount of stack (0 .. 7.5 KiB in 256-byte
 * steps) so that the guard fault lands at many different points inside the library:
 *  - snprintf with floating-point and long double conversions (~3-11 KiB of stack), output checked
 *    against the same call made on the thread's own stack;
 *  - qsort whose comparator needs 24 KiB of stack, so the stack moves under qsort's own frames
 *    (and under the temporary buffer it may keep on the stack); the result must be sorted;
 *  - getaddrinfo("localhost") (~8 KiB), result compared with the same call outside goroutines.
 */
#include "gs_test.h"

#include <netdb.h>
#include <sys/socket.h>

static char want_fmt[512];
static int want_gai_rc;
static int want_gai_family;

static GS_TEST_NOINLINE void burn(size_t bytes, void (*f)(void)) {
    volatile char buf[256];
    buf[0] = 1;
    if (bytes >= sizeof buf) burn(bytes - sizeof buf, f);
    else f();
    CHECK_EQ(buf[0], 1);
}

static void format_it(char *out, size_t n) {
    snprintf(out, n, "%d %s %.17g %Lf %e %x", 42, "str", 3.14159265358979, (long double)1e300L, 2.5e-7, 0xbeef);
}

static void do_snprintf(void) {
    char out[512];
    format_it(out, sizeof out);
    CHECK(strcmp(out, want_fmt) == 0);
}

static GS_TEST_NOINLINE int deep_value(int x, int depth) {
    volatile char pad[1024];
    pad[0] = (char)x;
    if (depth > 0) return deep_value(x, depth - 1) + pad[0] - (char)x;
    return x;
}

static int cmp_ints(const void *a, const void *b) {
    /* 24 KiB of stack for every comparison: the first grows the stack under qsort. */
    int x = deep_value(*(const int *)a, 24), y = deep_value(*(const int *)b, 24);
    return (x > y) - (x < y);
}

static void do_qsort(void) {
    int v[64];
    for (int i = 0; i < 64; i++) v[i] = (i * 37) % 64;
    qsort(v, 64, sizeof v[0], cmp_ints);
    for (int i = 0; i < 64; i++) CHECK_EQ(v[i], i);
}

static void do_gai(void) {
    struct addrinfo hints, *res = NULL;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo("localhost", "80", &hints, &res);
    CHECK_EQ(rc, want_gai_rc);
    if (rc == 0) {
        CHECK(res != NULL);
        CHECK_EQ(res->ai_family, want_gai_family);
        freeaddrinfo(res);
    }
}

typedef struct {
    size_t burn;
    void (*f)(void);
} job;

static int grown_jobs;

static void run_job(void *p) {
    job *j = p;
    gs_stack_info si;
    burn(j->burn, j->f);
    CHECK_OK(gs_get_stack_info(&si));
    if (si.grows >= 1) __atomic_fetch_add(&grown_jobs, 1, __ATOMIC_RELAXED); /* several Ps: several threads */
}

static void run_case(const char *name, void (*f)(void)) {
    job jobs[30];
    gs_attr a;
    gs_stats st0, st1;
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
    CHECK_OK(gs_get_stats(&st0));
    grown_jobs = 0;
    for (int i = 0; i < 30; i++) {
        jobs[i].burn = (size_t)i * 256;
        jobs[i].f = f;
        CHECK_ID(gs_spawn_with(&a, run_job, &jobs[i]));
    }
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&st1));
    /* The deepest cases, at least, need more than the first 8 KiB: the call grew the stack. */
    CHECK(grown_jobs >= 8);
    CHECK(st1.stack_grows - st0.stack_grows >= (uint64_t)grown_jobs);
    printf("ok: %s at 30 depths: %d goroutines grew, %" PRIu64 " grows\n", name, grown_jobs,
           st1.stack_grows - st0.stack_grows);
}

int main(void) {
    struct addrinfo hints, *res = NULL;
    gs_test_begin(100);
    format_it(want_fmt, sizeof want_fmt);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    want_gai_rc = getaddrinfo("localhost", "80", &hints, &res);
    if (want_gai_rc == 0) {
        want_gai_family = res->ai_family;
        freeaddrinfo(res);
    } else {
        printf("note: getaddrinfo(localhost) fails here too: %s\n", gai_strerror(want_gai_rc));
    }
    run_case("snprintf", do_snprintf);
    run_case("qsort with a stack-growing comparator", do_qsort);
    run_case("getaddrinfo(localhost)", do_gai);
    return 0;
}
