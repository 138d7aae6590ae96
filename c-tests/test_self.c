/*
 * test_self: goroutine ids.
 *  - gs_self() is 0 outside goroutines (before and after gs_run);
 *  - inside, it is > 0, equals the id gs_spawn returned for that goroutine, and does not change
 *    across yields;
 *  - ids are distinct: among 1,000 goroutines alive at once (spawned from main and from inside
 *    goroutines) and across two successive gs_run batches.
 */
#include "gs_test.h"

#define N 500 /* spawned from main per batch; each spawns one child */
#define PER_BATCH (2 * N)

typedef struct {
    int64_t spawned;  /* returned by gs_spawn */
    int64_t seen[3];  /* gs_self() at start, after one yield, after two */
} rec;

static rec recs[2][PER_BATCH];
static int batch;

static void child_fn(void *p) {
    rec *r = p;
    r->seen[0] = gs_self();
    CHECK_OK(gs_yield());
    r->seen[1] = gs_self();
    CHECK_OK(gs_yield());
    r->seen[2] = gs_self();
}

static void parent_fn(void *p) {
    rec *r = p;
    rec *child = r + N;
    r->seen[0] = gs_self();
    child->spawned = CHECK_ID(gs_spawn(child_fn, child));
    CHECK(child->spawned != r->seen[0]);
    CHECK_OK(gs_yield());
    r->seen[1] = gs_self();
    CHECK_OK(gs_yield());
    r->seen[2] = gs_self();
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(void) {
    static int64_t all[2 * PER_BATCH];
    size_t n_all = 0;

    gs_test_begin(100);
    CHECK_EQ(gs_self(), 0);
    for (batch = 0; batch < 2; batch++) {
        for (int i = 0; i < N; i++) recs[batch][i].spawned = CHECK_ID(gs_spawn(parent_fn, &recs[batch][i]));
        CHECK_EQ(gs_self(), 0);
        CHECK_OK(gs_run());
        CHECK_EQ(gs_self(), 0);
        for (int i = 0; i < PER_BATCH; i++) {
            rec *r = &recs[batch][i];
            CHECK(r->spawned > 0);
            for (int k = 0; k < 3; k++) {
                if (r->seen[k] != r->spawned)
                    fprintf(stderr, "batch %d goroutine #%d: gs_spawn said %" PRId64 ", gs_self said %" PRId64
                                    " (check %d)\n", batch, i, r->spawned, r->seen[k], k);
                CHECK_EQ(r->seen[k], r->spawned);
            }
            all[n_all++] = r->spawned;
        }
    }
    qsort(all, n_all, sizeof all[0], cmp_i64);
    for (size_t i = 1; i < n_all; i++) {
        if (all[i] == all[i - 1]) fprintf(stderr, "goroutine id %" PRId64 " was given twice\n", all[i]);
        CHECK(all[i] != all[i - 1]);
    }
    printf("ok: %zu distinct goroutine ids, %" PRId64 "..%" PRId64 "\n", n_all, all[0], all[n_all - 1]);
    return 0;
}
