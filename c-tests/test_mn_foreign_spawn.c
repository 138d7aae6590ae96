/* M:N: 1,000,000 goroutines spawned from 4 foreign threads at once, while main runs gs_run on
 * 2 Ps (workers run goroutines in the background). Each goroutine must run exactly once. */
#include "gs_test.h"
#include <stdatomic.h>

#define THREADS 4
#define PER_THREAD 250000
#define TOTAL (THREADS * PER_THREAD)

static _Atomic unsigned char ran[TOTAL];
static atomic_int spawn_errors;

static void body(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    atomic_fetch_add_explicit(&ran[i], 1, memory_order_relaxed);
    if (i % 1000 == 0) gs_yield();
}

static void *spawner(void *arg) {
    uintptr_t base = (uintptr_t)arg * PER_THREAD;
    for (uintptr_t i = 0; i < PER_THREAD; i++)
        if (gs_spawn(body, (void *)(base + i)) <= 0) atomic_fetch_add(&spawn_errors, 1);
    return NULL;
}

int main(void) {
    gs_test_begin(100);
    CHECK(gs_set_maxprocs(2) >= 1);
    CHECK_EQ(gs_maxprocs(), 2);
    gs_stats before;
    CHECK_OK(gs_get_stats(&before));
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, spawner, (void *)i) == 0);
    /* main joins the scheduler while the spawners are still going: it may return early whenever
     * the live count touches 0, so call it until the spawners are done and nothing is left. */
    CHECK_OK(gs_run());
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_OK(gs_run());
    CHECK_EQ(atomic_load(&spawn_errors), 0);
    long missing = 0, dup = 0;
    for (long i = 0; i < TOTAL; i++) {
        unsigned c = atomic_load(&ran[i]);
        if (c == 0) missing++;
        if (c > 1) dup++;
    }
    if (missing || dup) fprintf(stderr, "missing %ld, duplicated %ld\n", missing, dup);
    CHECK_EQ(missing, 0);
    CHECK_EQ(dup, 0);
    gs_stats after;
    CHECK_OK(gs_get_stats(&after));
    CHECK_EQ(after.goroutines_total - before.goroutines_total, TOTAL);
    CHECK_EQ(after.goroutines_live, 0);
    CHECK(after.threads >= 2);
    printf("1,000,000 goroutines from 4 threads: each ran once; %u threads ran goroutines\n", after.threads);
    return 0;
}
