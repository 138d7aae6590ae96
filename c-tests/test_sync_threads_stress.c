/* Real parallelism today (before M:N): several host threads and the goroutines of the gs_run
 * thread send and receive on the same channels at once, with selects, timeouts, a mutex and a
 * semaphore. Wake-ups cross threads both ways and claims race for real; every value must be
 * received exactly once and the mutex-protected counter must be exact. */
#include "gs_test.h"

enum { THREADS = 3, GOROUTINES = 6, EACH = 5000 };
enum { PRODUCERS = THREADS + GOROUTINES, TOTAL = PRODUCERS * EACH };
static gs_chan *c1, *c2;
static gs_mutex *mu;
static gs_sema *sem;
static gs_waitgroup *producers;
static int seen[TOTAL];
static long received, counter;

static void produce(long id) {
    for (long j = 0; j < EACH; j++) {
        long v = id * EACH + j;
        if (j % 3 == 0) {
            gs_case cs[2] = {{c1, GS_CASE_SEND, &v, 99}, {c2, GS_CASE_SEND, &v, 99}};
            int i = gs_select(cs, 2, -1);
            CHECK(i == 0 || i == 1);
            CHECK_OK(cs[i].status);
        } else {
            CHECK_OK(gs_chan_send(j % 3 == 1 ? c1 : c2, &v));
        }
        if (j % 64 == 0) {
            CHECK_OK(gs_mutex_lock(mu));
            counter++;
            CHECK_OK(gs_mutex_unlock(mu));
        }
    }
    CHECK_OK(gs_waitgroup_done(producers));
}

static void consume(long id) {
    int open1 = 1, open2 = 1;
    while (open1 || open2) {
        long v = -1;
        gs_case cs[2] = {{open1 ? c1 : NULL, GS_CASE_RECV, &v, 99}, {open2 ? c2 : NULL, GS_CASE_RECV, &v, 99}};
        int i = gs_select(cs, 2, (id % 2) ? 50 * 1000 : -1);
        if (i == GS_ETIMEDOUT) {
            CHECK_EQ(v, -1);
            continue;
        }
        CHECK(i == 0 || i == 1);
        if (cs[i].status == GS_ECLOSED) {
            if (i == 0) open1 = 0;
            else open2 = 0;
            continue;
        }
        CHECK_OK(cs[i].status);
        CHECK(v >= 0 && v < TOTAL);
        CHECK_EQ(__atomic_fetch_add(&seen[v], 1, __ATOMIC_RELAXED), 0);
        __atomic_fetch_add(&received, 1, __ATOMIC_RELAXED);
        if (v % 128 == 0) {
            CHECK_OK(gs_sema_acquire(sem));
            CHECK_OK(gs_mutex_lock(mu));
            counter++;
            CHECK_OK(gs_mutex_unlock(mu));
            CHECK_OK(gs_sema_release(sem));
        }
    }
}

static void *thread_producer(void *arg) { produce((long)arg); return NULL; }
static void *thread_consumer(void *arg) { consume((long)arg); return NULL; }
static void g_producer(void *arg) { produce((long)arg); }
static void g_consumer(void *arg) { consume((long)arg); }
static void g_closer(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(producers));
    CHECK_OK(gs_chan_close(c1));
    CHECK_OK(gs_chan_close(c2));
}

int main(void) {
    gs_test_begin(100);
    CHECK((c1 = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((c2 = gs_chan_new(sizeof(long), 4)) != NULL);
    CHECK((mu = gs_mutex_new()) != NULL);
    CHECK((sem = gs_sema_new(2)) != NULL);
    CHECK((producers = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(producers, PRODUCERS));
    for (long i = 0; i < GOROUTINES; i++) {
        CHECK_ID(gs_spawn(g_producer, (void *)(THREADS + i)));
        CHECK_ID(gs_spawn(g_consumer, (void *)i));
    }
    CHECK_ID(gs_spawn(g_closer, NULL));
    pthread_t tp[THREADS], tc[THREADS];
    for (long i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&tp[i], NULL, thread_producer, (void *)i) == 0);
        CHECK(pthread_create(&tc[i], NULL, thread_consumer, (void *)i) == 0);
    }
    CHECK_OK(gs_run());
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(tp[i], NULL) == 0);
        CHECK(pthread_join(tc[i], NULL) == 0);
    }
    CHECK_EQ(received, TOTAL);
    for (long i = 0; i < TOTAL; i++) CHECK_EQ(seen[i], 1);
    long expect = (long)PRODUCERS * ((EACH + 63) / 64) + (TOTAL + 127) / 128;
    CHECK_EQ(counter, expect);
    CHECK_OK(gs_chan_free(c1));
    CHECK_OK(gs_chan_free(c2));
    CHECK_OK(gs_mutex_free(mu));
    CHECK_OK(gs_sema_free(sem));
    CHECK_OK(gs_waitgroup_free(producers));
    printf("threads stress: %d values each received once across %d threads and %d goroutines\n", TOTAL,
           2 * THREADS, 2 * GOROUTINES);
    return 0;
}
