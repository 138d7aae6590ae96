/* M:N: random yield/sleep interleavings on 1, 2, 4 and 8 Ps with per-goroutine checksums; sleep
 * ordering; maxprocs = 1 determinism (the same program gives the same trace twice). */
#include "gs_test.h"
#include <stdatomic.h>
#include <time.h>

#define N 300
#define STEPS 40

typedef struct {
    uint64_t seed;
    uint64_t sum;
    int id;
} task;

static task tasks[N];
static uint64_t expect[N];

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t expected_sum(uint64_t seed) {
    uint64_t s = seed, sum = 0;
    for (int k = 0; k < STEPS; k++) sum = sum * 31 + (next_rand(&s) % 1000);
    return sum;
}

static void worker(void *arg) {
    task *t = arg;
    uint64_t s = t->seed, sum = 0;
    for (int k = 0; k < STEPS; k++) {
        uint64_t r = next_rand(&s);
        volatile uint64_t local = sum * 31 + (r % 1000); /* lives on the stack across switches */
        switch (r % 4) {
        case 0: CHECK_OK(gs_yield()); break;
        case 1: CHECK_OK(gs_sleep((int64_t)(r % 200) * 1000)); break; /* up to 200 us */
        default: break;
        }
        sum = local;
    }
    t->sum = sum;
}

static void run_on(int procs) {
    gs_set_maxprocs(procs);
    CHECK_EQ(gs_maxprocs(), procs);
    for (int i = 0; i < N; i++) {
        tasks[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) + (uint64_t)procs;
        tasks[i].sum = 0;
        tasks[i].id = i;
        expect[i] = expected_sum(tasks[i].seed);
        CHECK_ID(gs_spawn(worker, &tasks[i]));
    }
    CHECK_OK(gs_run());
    for (int i = 0; i < N; i++) CHECK_EQ(tasks[i].sum, expect[i]);
}

/* sleep ordering: goroutines sleeping different durations wake in deadline order */
static int wake_order[16];
static atomic_int nwoken;
static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static double sleep_base; /* common start: deadlines are absolute, so a late start cannot reorder */
static void sleeper(void *arg) {
    int ms = (int)(intptr_t)arg;
    double deadline = sleep_base + ms * 10.0;
    double left = deadline - now_ms();
    CHECK_OK(gs_sleep(left > 0 ? (int64_t)(left * 1e6) : 0));
    CHECK(now_ms() >= deadline - 0.01); /* never early */
    wake_order[atomic_fetch_add(&nwoken, 1)] = ms;
}
/* Deadline order is exact on one P; on several, goroutines pinned to different threads may be
 * resumed out of order when the OS delays a thread (Go promises only "at least d" there too). */
static void sleep_order(int procs) {
    gs_set_maxprocs(procs);
    atomic_store(&nwoken, 0);
    sleep_base = now_ms() + 5.0;
    int ms[] = {5, 1, 4, 2, 3};
    for (int i = 0; i < 5; i++) CHECK_ID(gs_spawn(sleeper, (void *)(intptr_t)ms[i]));
    CHECK_OK(gs_run());
    CHECK_EQ(atomic_load(&nwoken), 5);
    if (procs == 1)
        for (int i = 0; i < 5; i++) CHECK_EQ(wake_order[i], i + 1);
}

/* determinism at one P: a trace of (goroutine, step) must be identical across runs */
#define DN 50
#define TRACE_MAX (DN * 10 * 2)
static int trace[TRACE_MAX];
static int ntrace;
static void det_worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t s = (uint64_t)id * 7919 + 1;
    for (int k = 0; k < 10; k++) {
        CHECK(ntrace < TRACE_MAX);
        trace[ntrace++] = id * 100 + k;
        if (id >= DN) return; /* children (ids >= DN) log one step and end */
        if (next_rand(&s) % 3 == 0) CHECK_ID(gs_spawn(det_worker, (void *)(intptr_t)(id + DN)));
        else CHECK_OK(gs_yield());
    }
}

static int det_run(int *out) {
    ntrace = 0;
    for (int i = 0; i < DN; i++) CHECK_ID(gs_spawn(det_worker, (void *)(intptr_t)i));
    CHECK_OK(gs_run());
    memcpy(out, trace, sizeof(int) * (size_t)ntrace);
    return ntrace;
}

int main(void) {
    gs_test_begin(100);
    int procs[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) run_on(procs[i]);

    sleep_order(1);
    sleep_order(2);

    gs_set_maxprocs(1);
    static int a[TRACE_MAX], b[TRACE_MAX];
    int na = det_run(a), nb = det_run(b);
    CHECK_EQ(na, nb);
    CHECK(memcmp(a, b, sizeof(int) * (size_t)na) == 0);
    printf("interleavings on 1/2/4/8 Ps ok; sleep order ok; one-P trace of %d steps identical twice\n", na);
    return 0;
}
