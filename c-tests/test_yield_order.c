/*
 * test_yield_order: with one P, goroutines spawned from main run in spawn order when main calls
 * gs_run(), and gs_yield() puts the caller at the tail of the run queue (strict FIFO round robin),
 * also when more goroutines are runnable than the 256-slot local run queue holds.
 *
 * Every goroutine appends its index to a log each time it is resumed; the log must equal the
 * order that a simulated FIFO queue produces, entry for entry.
 */
#include "gs_test.h"

typedef struct {
    int32_t *log;
    size_t len, cap;
} order_log;

typedef struct {
    order_log *log;
    int32_t index;
    int yields; /* how many times this goroutine yields before returning */
} worker;

static void worker_fn(void *p) {
    worker *w = p;
    order_log *l = w->log;
    for (int r = 0;; r++) {
        CHECK(l->len < l->cap);
        l->log[l->len++] = w->index;
        if (r == w->yields) break;
        CHECK_OK(gs_yield());
    }
}

/* The order a FIFO run queue produces: pop the head, run it, push it back if it yields again. */
static size_t simulate(const worker *ws, int n, int32_t *out) {
    int32_t *queue = malloc(sizeof *queue * (size_t)n);
    int *left = malloc(sizeof *left * (size_t)n);
    size_t head = 0, count = (size_t)n, len = 0;
    CHECK(queue != NULL && left != NULL);
    for (int i = 0; i < n; i++) {
        queue[i] = i;
        left[i] = ws[i].yields;
    }
    while (count > 0) {
        int32_t g = queue[head];
        head = (head + 1) % (size_t)n;
        count--;
        out[len++] = g;
        if (left[g]-- > 0) {
            queue[(head + count) % (size_t)n] = g;
            count++;
        }
    }
    free(queue);
    free(left);
    return len;
}

/* Spawns n goroutines; goroutine i yields yields_of(i) times. Checks the resume order. */
static void run_case(const char *what, int n, int (*yields_of)(int)) {
    worker *ws = calloc((size_t)n, sizeof *ws);
    order_log l;
    int32_t *want;
    size_t want_len, total = 0;
    gs_stats before, after;

    CHECK(ws != NULL);
    for (int i = 0; i < n; i++) total += (size_t)yields_of(i) + 1;
    l.log = calloc(total, sizeof *l.log);
    want = calloc(total, sizeof *want);
    CHECK(l.log != NULL && want != NULL);
    l.len = 0;
    l.cap = total;

    CHECK_OK(gs_get_stats(&before));
    for (int i = 0; i < n; i++) {
        ws[i].log = &l;
        ws[i].index = i;
        ws[i].yields = yields_of(i);
        CHECK_ID(gs_spawn(worker_fn, &ws[i]));
    }
    /* Spawned from main: queued, nothing runs before gs_run. */
    CHECK_EQ(l.len, 0);
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&after));

    want_len = simulate(ws, n, want);
    CHECK_EQ(want_len, total);
    if (l.len != total) {
        fprintf(stderr, "%s: %zu log entries, expected %zu\n", what, l.len, total);
        CHECK_EQ(l.len, total);
    }
    for (size_t k = 0; k < total; k++) {
        if (l.log[k] != want[k]) {
            fprintf(stderr, "%s: resume #%zu was goroutine #%d, expected #%d (FIFO round robin)\n", what,
                    k, l.log[k], want[k]);
            fprintf(stderr, "  log around it:");
            for (size_t j = k >= 5 ? k - 5 : 0; j < total && j < k + 6; j++)
                fprintf(stderr, " %d%s", l.log[j], j == k ? "*" : "");
            fprintf(stderr, "\n  expected:     ");
            for (size_t j = k >= 5 ? k - 5 : 0; j < total && j < k + 6; j++)
                fprintf(stderr, " %d%s", want[j], j == k ? "*" : "");
            fprintf(stderr, "\n");
            CHECK_EQ(l.log[k], want[k]);
        }
    }
    /* Every resume after the first run of each goroutine is a switch. */
    CHECK(after.switches - before.switches >= total - (size_t)n);
    CHECK_EQ(after.goroutines_live, 0);
    CHECK_EQ(after.goroutines_total - before.goroutines_total, n);
    printf("ok: %s (%d goroutines, %zu resumes)\n", what, n, total);
    free(ws);
    free(l.log);
    free(want);
}

static int yields_0(int i) { (void)i; return 0; }
static int yields_5(int i) { (void)i; return 5; }
static int yields_10(int i) { (void)i; return 10; }
static int yields_mixed(int i) { return (i * 7) % 5; } /* some leave the rotation early */
static int yields_by_index(int i) { return i % 4 == 3 ? 0 : 3 + i % 3; }

int main(void) {
    gs_test_begin(100);

    {
        gs_stats st;
        CHECK_OK(gs_get_stats(&st));
        if (st.maxprocs != 1) fprintf(stderr, "FIFO order needs one P: run with GOSTACK_MAXPROCS=1\n");
        CHECK_EQ(st.maxprocs, 1);
    }
    /* Nothing to run: returns at once. */
    CHECK_OK(gs_run());

    run_case("one goroutine yielding to itself", 1, yields_5);
    run_case("two goroutines ping-pong", 2, yields_10);
    run_case("10 goroutines, no yields", 10, yields_0);
    run_case("100 goroutines x 10 rounds", 100, yields_10);
    run_case("256 goroutines x 5 rounds", 256, yields_5);
    run_case("300 goroutines x 5 rounds (> local run queue)", 300, yields_5);
    run_case("1000 goroutines x 5 rounds", 1000, yields_5);
    run_case("1000 goroutines, mixed yield counts", 1000, yields_mixed);
    run_case("2000 goroutines, mixed yield counts", 2000, yields_by_index);
    /* gs_run can be entered again after it returned. */
    run_case("100 goroutines x 10 rounds again", 100, yields_10);
    return 0;
}
