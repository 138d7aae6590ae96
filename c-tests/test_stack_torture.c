/*
 * Differential stack torture: libc-heavy C on goroutine stacks, every result compared with the same
 * task run where the stack cannot move (the main thread's own stack).
 *
 * Each task (seeded by its number) builds strings piece by piece in uninitialised stack buffers
 * with snprintf (long doubles through varargs: `%.25Le`, `%.3Lf`, `%g`, `%s`), recurses while a
 * buffer is half written, sorts with qsort and a comparator that itself needs stack, longjmps out
 * of a recursion, and yields at seeded points. Its result is a 64-bit hash of everything it
 * produced. The compiler, not the task, leaves partly written words on the stack (the 6 padding
 * bytes of a long double slot, the unwritten tail of a buffer): exactly the words a conservative
 * stack move can mistake for pointers (issue #12, notes/growth.md).
 *
 * Environment (all optional):
 *   TORTURE_TASKS       tasks in all (default 100000)
 *   TORTURE_GOROUTINES  goroutines sharing them (default 400)
 *   TORTURE_WINDOW      0 (default): plain gs_spawn, the default stack; N: GROWABLE, N-byte window
 *   TORTURE_KIND        0-3: every step of every task is of that kind (format, recurse, sort, jump)
 *   TORTURE_REPORT      1: report the differences and the moves instead of failing on them
 *                       (the opt-in hazard measurement of the moving path, docs/PERFORMANCE.md)
 *
 * At default settings the test requires 0 differences and 0 stack moves.
 */
#include "gs_test.h"

#include <setjmp.h>
#include <stdatomic.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int in_goroutine;

static void maybe_yield(uint64_t *rng) {
    /* The draw happens on the thread too, so that both runs see the same sequence. */
    if ((rng_next(rng) & 3) == 0 && in_goroutine) gs_yield();
}

/* Formats a record piece by piece into an uninitialised buffer; returns its hash. */
static GS_TEST_NOINLINE uint64_t format_pieces(uint64_t *rng, uint64_t h) {
    char out[1024];
    long double a = (long double)(rng_next(rng) % 100000) / 7.0L + 1e3L;
    long double b = (long double)(rng_next(rng) % 1000) * 1e290L / 3.0L;
    double c = (double)(rng_next(rng) % 1000000) / 9.0;
    const char *words[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
    int pos = 0;
    pos += snprintf(out + pos, sizeof out - (size_t)pos, "%d|%s|", (int)(rng_next(rng) % 1000),
                    words[rng_next(rng) % 5]);
    maybe_yield(rng);
    pos += snprintf(out + pos, sizeof out - (size_t)pos, "%.17g|%.25Le|", c, a);
    pos += snprintf(out + pos, sizeof out - (size_t)pos, "%.3Lf|%Lg|", a, b);
    maybe_yield(rng);
    pos += snprintf(out + pos, sizeof out - (size_t)pos, "%.25Le", b);
    return fnv(h, out, (size_t)pos);
}

/* Recurses `depth` levels, each with a half-written buffer, formatting at every level. */
static GS_TEST_NOINLINE uint64_t recurse(uint64_t *rng, int depth, uint64_t h) {
    char buf[512];
    int n = snprintf(buf, 200, "%d:", depth);
    if ((depth & 7) == 0) n += snprintf(buf + n, 200, "%.20Le:", (long double)depth * 1.000001L);
    if (depth > 0) {
        if ((rng_next(rng) & 15) == 0) h = format_pieces(rng, h);
        h = recurse(rng, depth - 1, h);
    } else {
        h = format_pieces(rng, h);
    }
    /* The second half is written only now, after the deeper calls. */
    if ((depth & 3) == 0) n += snprintf(buf + n, sizeof buf - (size_t)n, "%Lg", (long double)h / 3.0L);
    return fnv(h, buf, (size_t)n);
}

struct item {
    long double key;
    int id;
};

/* A comparator that needs stack: formats both keys (scaled to integers: printing long doubles
 * in every comparison made the sort most of the test's time) and compares the text. */
static int cmp_items(const void *x, const void *y) {
    const struct item *a = x, *b = y;
    char sa[96], sb[96];
    snprintf(sa, sizeof sa, "%+030lld", (long long)(a->key * 1000.0L));
    snprintf(sb, sizeof sb, "%+030lld", (long long)(b->key * 1000.0L));
    int r = strcmp(sa, sb);
    return r != 0 ? r : (a->id > b->id) - (a->id < b->id);
}

static GS_TEST_NOINLINE uint64_t sort_task(uint64_t *rng, uint64_t h) {
    struct item items[64];
    int n = 4 + (int)(rng_next(rng) % 24);
    for (int i = 0; i < n; i++) {
        items[i].key = (long double)(int64_t)(rng_next(rng) % 2000000) / 1000.0L - 1000.0L;
        items[i].id = i;
    }
    qsort(items, (size_t)n, sizeof items[0], cmp_items);
    char line[64];
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "%d=%.6Lf;", items[i].id, items[i].key);
        h = fnv(h, line, (size_t)len);
    }
    return h;
}

static GS_TEST_NOINLINE void dive_and_jump(jmp_buf *env, uint64_t *rng, int depth, uint64_t *h) {
    char scratch[300];
    int n = snprintf(scratch, sizeof scratch, "%d", depth);
    if (depth % 5 == 0) n += snprintf(scratch + n, sizeof scratch - (size_t)n, "%.18Le", (long double)depth / 7.0L);
    *h = fnv(*h, scratch, (size_t)n);
    if (depth == 0) {
        uint64_t r = rng_next(rng);
        if (r % 8 != 0) longjmp(*env, 1 + (int)(r % 5));
        return; /* now and then the dive returns normally */
    }
    dive_and_jump(env, rng, depth - 1, h);
}

static GS_TEST_NOINLINE uint64_t jump_task(uint64_t *rng, uint64_t h) {
    jmp_buf env;
    volatile uint64_t vh = h;
    uint64_t inner = h;
    int depth = 1 + (int)(rng_next(rng) % 30);
    int rc = setjmp(env);
    if (rc == 0) {
        dive_and_jump(&env, rng, depth, &inner);
        rc = 0;
    }
    vh = fnv(vh ^ inner, &rc, sizeof rc);
    return vh;
}

static long only_kind = -1;

static uint64_t run_task(uint64_t task) {
    uint64_t rng = task * 0x9e3779b97f4a7c15ull + 0x1234567ull;
    if (rng == 0) rng = 1;
    uint64_t h = 0xcbf29ce484222325ull;
    int steps = 2 + (int)(rng_next(&rng) % 3);
    for (int s = 0; s < steps; s++) {
        uint64_t kind = rng_next(&rng) % 4;
        if (only_kind >= 0) kind = (uint64_t)only_kind;
        switch (kind) {
        case 0: h = format_pieces(&rng, h); break;
        case 1: h = recurse(&rng, (int)(rng_next(&rng) % 80), h); break;
        case 2: h = sort_task(&rng, h); break;
        default: h = jump_task(&rng, h); break;
        }
        maybe_yield(&rng);
    }
    return h;
}

static long ntasks = 100000, ngoroutines = 400;
static uint64_t *expected;
static atomic_long differences, done_tasks;

static void worker(void *arg) {
    long k = (long)arg;
    for (long t = k; t < ntasks; t += ngoroutines) {
        uint64_t h = run_task((uint64_t)t);
        if (h != expected[t]) {
            if (atomic_fetch_add(&differences, 1) < 5)
                fprintf(stderr, "task %ld: %016" PRIx64 " on a goroutine, %016" PRIx64 " on the thread\n", t, h,
                        expected[t]);
        }
        atomic_fetch_add(&done_tasks, 1);
    }
}

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtol(v, NULL, 0) : dflt;
}

int main(void) {
    ntasks = env_long("TORTURE_TASKS", ntasks);
    ngoroutines = env_long("TORTURE_GOROUTINES", ngoroutines);
    long window = env_long("TORTURE_WINDOW", 0);
    int report = env_long("TORTURE_REPORT", 0) != 0;
    only_kind = env_long("TORTURE_KIND", -1);
    CHECK(ntasks > 0 && ngoroutines > 0);

    expected = calloc((size_t)ntasks, sizeof *expected);
    CHECK(expected != NULL);
    for (long t = 0; t < ntasks; t++) expected[t] = run_task((uint64_t)t);

    gs_stats before;
    CHECK_OK(gs_get_stats(&before));
    in_goroutine = 1;
    for (long k = 0; k < ngoroutines; k++) {
        if (window == 0) {
            CHECK_ID(gs_spawn(worker, (void *)k));
        } else {
            gs_attr a;
            gs_attr_init(&a);
            a.stack_size = (size_t)window;
            CHECK_ID(gs_spawn_with(&a, worker, (void *)k));
        }
    }
    CHECK_OK(gs_run());
    gs_stats after;
    CHECK_OK(gs_get_stats(&after));

    uint64_t moves = after.stack_moves - before.stack_moves;
    long diffs = atomic_load(&differences);
    printf("torture: %ld tasks on %ld goroutines (window %ld), %ld differences, %" PRIu64
           " stack moves (%" PRIu64 " grows, %" PRIu64 " shrinks), %" PRIu64 " in-place releases\n",
           (long)atomic_load(&done_tasks), ngoroutines, window, diffs, moves, after.stack_grows - before.stack_grows,
           after.stack_shrinks - before.stack_shrinks, after.stack_releases - before.stack_releases);
    CHECK_EQ(atomic_load(&done_tasks), ntasks);
    if (report) {
        if (moves > 0)
            printf("torture: %.3g wrong results per 1000 moves\n", 1000.0 * (double)diffs / (double)moves);
        return 0;
    }
    CHECK_EQ(diffs, 0);
    if (window == 0) CHECK_EQ(moves, 0);
    free(expected);
    return 0;
}
