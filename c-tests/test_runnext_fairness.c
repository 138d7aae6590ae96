/*
 * test_runnext_fairness: two goroutines handing a value back and forth through unbuffered
 * channels wake each other into the P's runnext slot and switch straight to each other. That
 * chain must not starve the goroutines waiting in the run queue (Go bounds it with the time
 * slice runnext inherits; gostack with a count of hand-offs in a row). With one P: a ping-pong
 * pair runs until the goroutines queued behind it have all run, and each of them must get its
 * turn within a bounded number of round trips. And a timer that comes due while such a pair runs
 * must fire (the hand-off checks for due timers as schedule() does): a sleeper that stops a
 * second pair wakes in time.
 */
#include "gs_test.h"

#include <time.h>

enum { WAITERS = 8 };

/* A ping-pong pair: the pinger sends, the ponger answers, until `stop`; `limit` round trips
 * without stopping fails the test (what it waits for never happened). */
struct pair {
    gs_chan *ping, *pong;
    volatile int stop;
    volatile long trips;
    long limit;
};

static void pinger(void *arg) {
    struct pair *p = arg;
    long v = 0;
    while (!p->stop) {
        CHECK(p->trips < p->limit); /* starved queue / sleeper never woke */
        CHECK_OK(gs_chan_send(p->ping, &v));
        CHECK_OK(gs_chan_recv(p->pong, &v));
        p->trips++;
    }
    v = -1;
    CHECK_OK(gs_chan_send(p->ping, &v));
}

static void ponger(void *arg) {
    struct pair *p = arg;
    long v;
    for (;;) {
        CHECK_OK(gs_chan_recv(p->ping, &v));
        if (v < 0) break;
        v++;
        CHECK_OK(gs_chan_send(p->pong, &v));
    }
}

/* Spawns the pair (ponger first: the pinger's first send finds it waiting). */
static void pair_spawn(struct pair *p, long limit) {
    p->ping = gs_chan_new(sizeof(long), 0);
    p->pong = gs_chan_new(sizeof(long), 0);
    CHECK(p->ping != NULL && p->pong != NULL);
    p->limit = limit;
    CHECK_ID(gs_spawn(ponger, p));
    CHECK_ID(gs_spawn(pinger, p));
}

static void pair_free(struct pair *p) {
    CHECK_OK(gs_chan_free(p->ping));
    CHECK_OK(gs_chan_free(p->pong));
}

/* ---- queued goroutines run during hand-offs ------------------------------------------------ */

static struct pair fair;
static volatile int ran;      /* queued goroutines that have run */
static long trips_seen[WAITERS];

static void waiter(void *arg) {
    trips_seen[(intptr_t)arg] = fair.trips;
    if (++ran == WAITERS) fair.stop = 1;
}

/* ---- a timer comes due during hand-offs ---------------------------------------------------- */

static struct pair timed;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double slept;

static void sleeper(void *arg) {
    (void)arg;
    double t0 = now_s();
    CHECK_OK(gs_sleep(5 * 1000 * 1000));
    slept = now_s() - t0;
    timed.stop = 1;
}

static void timer_during_handoffs(void) {
    CHECK_ID(gs_spawn(sleeper, NULL));
    pair_spawn(&timed, 50000000);
    CHECK_OK(gs_run());
    CHECK(slept >= 0.005);
    CHECK(slept < 1.0); /* 5 ms asked; generous for a loaded CI machine */
    CHECK(timed.trips > 0);
    pair_free(&timed);
}

int main(void) {
    pair_spawn(&fair, 1000000);
    for (intptr_t i = 0; i < WAITERS; i++) CHECK_ID(gs_spawn(waiter, (void *)i));
    CHECK_OK(gs_run());
    CHECK_EQ(ran, WAITERS);
    /* Every queued goroutine ran within a few thousand round trips of the start. */
    for (int i = 0; i < WAITERS; i++) CHECK(trips_seen[i] < 10000);
    pair_free(&fair);
    timer_during_handoffs();
    return 0;
}
