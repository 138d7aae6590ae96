/* Issue 20 item 8: deadlock detection counts only threads that could still wake a goroutine:
 * those that used the runtime and are not blocked in it. A thread that never called gostack does
 * not disable it, and a thread that used the runtime and exits later without waking anyone makes
 * gs_run look again (it returned GS_EDEADLOCK never: it waited for good). No /proc involved. */
#include "gs_test.h"
#include <stdatomic.h>

static gs_chan *never;

static void wait_forever(void *arg) {
    (void)arg;
    int v;
    gs_chan_recv(never, &v);
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A thread that has nothing to do with gostack: sleeps until the process ends. */
static void *bystander(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

/* A thread that used the runtime (it spawned a goroutine), then exits 200 ms later without
 * waking anyone. */
static atomic_int user_spawned, user_leaving;
static void *user_then_exit(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(wait_forever, NULL));
    atomic_store(&user_spawned, 1);
    usleep(200 * 1000);
    atomic_store(&user_leaving, 1);
    return NULL;
}

int main(void) {
    gs_test_begin(60);
    never = gs_chan_new(sizeof(int), 0);
    CHECK(never != NULL);
    pthread_t b;
    CHECK(pthread_create(&b, NULL, bystander, NULL) == 0);

    /* 1. Unrelated threads do not count. */
    CHECK_ID(gs_spawn(wait_forever, NULL));
    int64_t t0 = now_ms();
    CHECK_RC(gs_run(), GS_EDEADLOCK);
    printf("deadlock_threads: detected with an unrelated thread alive in %lld ms\n", (long long)(now_ms() - t0));

    /* 2. A runtime user that exits: gs_run waits while it lives, then reports. */
    pthread_t u;
    CHECK(pthread_create(&u, NULL, user_then_exit, NULL) == 0);
    while (!atomic_load(&user_spawned)) usleep(1000); /* it spawned */
    t0 = now_ms();
    CHECK_RC(gs_run(), GS_EDEADLOCK);
    int64_t waited = now_ms() - t0;
    printf("deadlock_threads: detected %lld ms after gs_run began (the last possible waker lived ~200 ms more)\n",
           (long long)waited);
    CHECK(atomic_load(&user_leaving)); /* not before the user thread was leaving */
    CHECK(pthread_join(u, NULL) == 0);
    /* (A runtime user that will send later is not a deadlock: test_deadlock.) */
    return 0;
}
