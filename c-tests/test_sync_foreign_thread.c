/* Threads outside goroutines block on channels, wait groups, mutexes and semaphores (the thread
 * itself blocks; goroutines keep running in gs_run on the main thread), and their sends, closes,
 * unlocks and releases wake goroutines. */
#include "gs_test.h"

enum { N = 10000 };
static gs_chan *to_thread, *from_thread, *never;
static gs_waitgroup *wg;
static gs_mutex *mu;
static gs_sema *sem;
static long shared;           /* guarded by mu */
static long thread_sum;

static void *host_thread(void *arg) {
    (void)arg;
    long v;
    /* Blocks this thread until the goroutines send. */
    CHECK_OK(gs_waitgroup_wait(wg));
    long sum = 0;
    int rc;
    while ((rc = gs_chan_recv(to_thread, &v)) == GS_OK) sum += v;
    CHECK_RC(rc, GS_ECLOSED);
    thread_sum = sum;
    /* Wake a goroutine blocked in a receive. */
    CHECK_OK(gs_chan_send(from_thread, &sum));
    /* Contend for the mutex with goroutines. */
    for (int i = 0; i < 1000; i++) {
        CHECK_OK(gs_mutex_lock(mu));
        shared++;
        CHECK_OK(gs_mutex_unlock(mu));
    }
    /* Timed receive from a thread. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_RC(gs_chan_recv_timeout(never, &v, 3 * 1000 * 1000), GS_ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) >= 3 * 1000 * 1000);
    gs_case cs[1] = {{never, GS_CASE_RECV, &v, 99}};
    CHECK_RC(gs_select(cs, 1, 1000 * 1000), GS_ETIMEDOUT);
    /* Semaphore: the goroutine releases it after a while. */
    CHECK_OK(gs_sema_acquire(sem));
    CHECK_OK(gs_chan_close(from_thread));
    return NULL;
}

/* A host thread whose %fs:0x70 (glibc's split-stack slot, where the runtime publishes a running
 * goroutine's stack guard) is non-zero, as C code built with -fsplit-stack leaves it: blocking
 * calls must still block the thread, not try to park a goroutine. On aarch64 the runtime keeps the
 * guard in a TLS word of its own (glibc's TCB has no such slot), which no host code can set: the
 * thread then only checks that it blocks. */
static gs_chan *split_ch;
static void *split_stack_thread(void *arg) {
    (void)arg;
#if defined(__x86_64__)
    uintptr_t fake = 4096, saved;
    __asm__ volatile("movq %%fs:0x70, %0" : "=r"(saved));
    __asm__ volatile("movq %0, %%fs:0x70" : : "r"(fake));
#endif
    long v = 0;
    CHECK_OK(gs_chan_recv(split_ch, &v));
    CHECK_EQ(v, 99);
    CHECK_RC(gs_chan_recv_timeout(split_ch, &v, 1000 * 1000), GS_ETIMEDOUT);
#if defined(__x86_64__)
    __asm__ volatile("movq %0, %%fs:0x70" : : "r"(saved));
#endif
    return NULL;
}
static void split_sender(void *arg) {
    (void)arg;
    long v = 99;
    CHECK_OK(gs_chan_send(split_ch, &v)); /* blocks until the thread receives */
}

static void feeder(void *arg) {
    long base = (long)arg;
    CHECK_OK(gs_waitgroup_done(wg));
    for (long i = 0; i < N / 4; i++) {
        long v = base + i;
        CHECK_OK(gs_chan_send(to_thread, &v));
    }
}

static gs_waitgroup *feeders;
static void feeder_wrap(void *arg) {
    feeder(arg);
    CHECK_OK(gs_waitgroup_done(feeders));
}

static void coordinator(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(feeders));
    CHECK_OK(gs_chan_close(to_thread));
    long sum = 0;
    CHECK_OK(gs_chan_recv(from_thread, &sum)); /* woken by the host thread's send */
    CHECK_EQ(sum, (long)N * (N - 1) / 2);
    for (int i = 0; i < 1000; i++) {
        CHECK_OK(gs_mutex_lock(mu));
        long s = shared;
        if (i % 16 == 0) gs_yield();
        shared = s + 1;
        CHECK_OK(gs_mutex_unlock(mu));
    }
    CHECK_OK(gs_sleep(2 * 1000 * 1000));
    CHECK_OK(gs_sema_release(sem));
    CHECK_RC(gs_chan_recv(from_thread, &sum), GS_ECLOSED); /* woken by the thread's close */
}

int main(void) {
    gs_test_begin(60);
    CHECK((to_thread = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((from_thread = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((never = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((wg = gs_waitgroup_new()) != NULL);
    CHECK((feeders = gs_waitgroup_new()) != NULL);
    CHECK((mu = gs_mutex_new()) != NULL);
    CHECK((sem = gs_sema_new(0)) != NULL);
    CHECK_OK(gs_waitgroup_add(wg, 4));
    CHECK_OK(gs_waitgroup_add(feeders, 4));
    for (long k = 0; k < 4; k++) CHECK_ID(gs_spawn(feeder_wrap, (void *)(k * (N / 4))));
    CHECK_ID(gs_spawn(coordinator, NULL));
    CHECK((split_ch = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK_ID(gs_spawn(split_sender, NULL));
    pthread_t th, th2;
    CHECK(pthread_create(&th, NULL, host_thread, NULL) == 0);
    CHECK(pthread_create(&th2, NULL, split_stack_thread, NULL) == 0);
    CHECK_OK(gs_run());
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(pthread_join(th2, NULL) == 0);
    CHECK_OK(gs_chan_free(split_ch));
    CHECK_EQ(thread_sum, (long)N * (N - 1) / 2);
    CHECK_EQ(shared, 2000);
    CHECK_OK(gs_chan_free(to_thread));
    CHECK_OK(gs_chan_free(from_thread));
    CHECK_OK(gs_chan_free(never));
    CHECK_OK(gs_waitgroup_free(wg));
    CHECK_OK(gs_waitgroup_free(feeders));
    CHECK_OK(gs_mutex_free(mu));
    CHECK_OK(gs_sema_free(sem));
    printf("test_sync_foreign_thread: ok\n");
    return 0;
}
