/*
 * test_gs_main: gs_main(fn, arg) runs fn as a goroutine on the calling thread.
 *  - fn receives arg, runs exactly once, gs_self() > 0 inside it, on the thread that called gs_main;
 *  - goroutines spawned by fn (and ones spawned from main before gs_main) run while fn yields;
 *  - gs_main returns GS_OK only after fn returned; then gs_self() is 0 again;
 *  - a fn that never yields works too, and gs_main can be called again.
 */
#include "gs_test.h"

static pthread_t main_thread;
static int worker_steps[3];
static int pre_spawned_runs;
static int fn_runs, fn_returned;
static int64_t fn_self;

static void worker(void *p) {
    int i = (int)(intptr_t)p;
    CHECK(pthread_equal(pthread_self(), main_thread));
    for (int k = 0; k < 3; k++) {
        worker_steps[i]++;
        CHECK_OK(gs_yield());
    }
    worker_steps[i]++;
}

static void pre_spawned(void *p) {
    (void)p;
    pre_spawned_runs++;
}

static void main_fn(void *p) {
    int yields = 0;
    CHECK(p == (void *)&fn_runs);
    CHECK(pthread_equal(pthread_self(), main_thread));
    fn_runs++;
    fn_self = gs_self();
    CHECK(fn_self > 0);
    for (intptr_t i = 0; i < 3; i++) CHECK_ID(gs_spawn(worker, (void *)i));
    CHECK_EQ(worker_steps[0] + worker_steps[1] + worker_steps[2], 0); /* spawning does not run them */
    while (worker_steps[0] + worker_steps[1] + worker_steps[2] < 12) {
        CHECK(++yields <= 100);
        CHECK_OK(gs_yield());
        CHECK_EQ(gs_self(), fn_self);
    }
    CHECK_EQ(pre_spawned_runs, 1);
    fn_returned = 1;
}

static int simple_runs;

static void simple(void *p) {
    CHECK(p == NULL);
    CHECK(gs_self() > 0);
    simple_runs++;
}

int main(void) {
    gs_test_begin(100);
    main_thread = pthread_self();

    CHECK_ID(gs_spawn(pre_spawned, NULL));
    CHECK_OK(gs_main(main_fn, &fn_runs));
    CHECK_EQ(fn_runs, 1);
    CHECK_EQ(fn_returned, 1);
    for (int i = 0; i < 3; i++) CHECK_EQ(worker_steps[i], 4);
    CHECK_EQ(gs_self(), 0);
    printf("ok: gs_main ran fn (goroutine %" PRId64 ") and its goroutines on the calling thread\n", fn_self);

    CHECK_OK(gs_main(simple, NULL));
    CHECK_EQ(simple_runs, 1);
    CHECK_OK(gs_main(simple, NULL));
    CHECK_EQ(simple_runs, 2);
    CHECK_EQ(gs_self(), 0);
    printf("ok: gs_main with a fn that never yields, twice\n");
    return 0;
}
