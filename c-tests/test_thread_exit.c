/* Issue 20 item 2: threads that run gs_run/gs_main and exit give back what the runtime gave them
 * (the sigaltstack mapping and its guard page, the M record), and gs_stats.threads counts live
 * threads only. 2,000 short-lived threads each run goroutines; the process's mappings must not
 * grow with them (before: 2 mappings per thread, ~33,000 threads exhausted vm.max_map_count). */
#include "gs_test.h"

enum { THREADS = 2000, BATCH = 8 };

static int count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    CHECK(f != NULL);
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void work(void *arg) {
    int *done = arg;
    CHECK_OK(gs_yield());
    __atomic_add_fetch(done, 1, __ATOMIC_RELAXED);
}

static void *runner(void *arg) {
    CHECK_ID(gs_spawn(work, arg));
    CHECK_OK(gs_run());
    return NULL;
}

static void *main_runner(void *arg) {
    CHECK_OK(gs_main(work, arg));
    return NULL;
}

int main(void) {
    gs_test_begin(100);
    int done = 0;
    /* Warm up: workers (P > 1), pools, the first Ms. */
    for (int i = 0; i < BATCH; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, runner, &done) == 0);
        CHECK(pthread_join(t, NULL) == 0);
    }
    int maps0 = count_maps();
    for (int i = 0; i < THREADS; i += BATCH) {
        pthread_t t[BATCH];
        for (int j = 0; j < BATCH; j++)
            CHECK(pthread_create(&t[j], NULL, (i / BATCH) % 2 ? runner : main_runner, &done) == 0);
        for (int j = 0; j < BATCH; j++) CHECK(pthread_join(t[j], NULL) == 0);
    }
    int maps1 = count_maps();
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    printf("thread_exit: %d threads ran goroutines; mappings %d -> %d; gs_stats.threads %u (maxprocs %u)\n",
           THREADS + BATCH, maps0, maps1, st.threads, st.maxprocs);
    CHECK_EQ(done, THREADS + BATCH);
    /* Slack for the allocator's and the runtime's own arenas, far below 2 per thread. */
    CHECK(maps1 - maps0 < 200);
    /* Live threads that ran goroutines: at most the workers (one per P) plus none of the exited. */
    CHECK(st.threads <= st.maxprocs + 1);
    /* The main thread itself can still run the scheduler. */
    CHECK_ID(gs_spawn(work, &done));
    CHECK_OK(gs_run());
    CHECK_EQ(done, THREADS + BATCH + 1);
    return 0;
}
