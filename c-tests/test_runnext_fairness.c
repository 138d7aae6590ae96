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

enum { WAITERS = 8, LIMIT = 1000000 };

static gs_chan *ping, *pong;
static volatile int ran;      /* queued goroutines that have run */
static volatile long trips;   /* round trips so far */
static long trips_seen[WAITERS];

static void pinger(void *arg) {
    (void)arg;
    long v = 0;
    while (ran < WAITERS) {
        CHECK(trips < LIMIT); /* the queued goroutines never ran: starved */
        CHECK_OK(gs_chan_send(ping, &v));
        CHECK_OK(gs_chan_recv(pong, &v));
        trips++;
    }
    v = -1;
    CHECK_OK(gs_chan_send(ping, &v));
}

static void ponger(void *arg) {
    (void)arg;
    long v;
    for (;;) {
        CHECK_OK(gs_chan_recv(ping, &v));
        if (v < 0) break;
        v++;
        CHECK_OK(gs_chan_send(pong, &v));
    }
}

static void waiter(void *arg) {
    trips_seen[(intptr_t)arg] = trips;
    ran++;
}

/* ---- a timer comes due during hand-offs ---------------------------------------------------- */

static gs_chan *tping, *tpong;
static volatile int stop;
static long pair_trips;

static void timed_pinger(void *arg) {
    (void)arg;
    long v = 0;
    while (!stop) {
        CHECK(pair_trips < 50000000); /* the sleeper never woke */
        CHECK_OK(gs_chan_send(tping, &v));
        CHECK_OK(gs_chan_recv(tpong, &v));
        pair_trips++;
    }
    v = -1;
    CHECK_OK(gs_chan_send(tping, &v));
}

static void timed_ponger(void *arg) {
    (void)arg;
    long v;
    for (;;) {
        CHECK_OK(gs_chan_recv(tping, &v));
        if (v < 0) break;
        CHECK_OK(gs_chan_send(tpong, &v));
    }
}

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
    stop = 1;
}

static void timer_during_handoffs(void) {
    tping = gs_chan_new(sizeof(long), 0);
    tpong = gs_chan_new(sizeof(long), 0);
    CHECK(tping != NULL && tpong != NULL);
    CHECK_ID(gs_spawn(sleeper, NULL));
    CHECK_ID(gs_spawn(timed_ponger, NULL));
    CHECK_ID(gs_spawn(timed_pinger, NULL));
    CHECK_OK(gs_run());
    CHECK(slept >= 0.005);
    CHECK(slept < 1.0); /* 5 ms asked; generous for a loaded CI machine */
    CHECK(pair_trips > 0);
    CHECK_OK(gs_chan_free(tping));
    CHECK_OK(gs_chan_free(tpong));
}

int main(void) {
    ping = gs_chan_new(sizeof(long), 0);
    pong = gs_chan_new(sizeof(long), 0);
    CHECK(ping != NULL && pong != NULL);
    CHECK_ID(gs_spawn(ponger, NULL));
    CHECK_ID(gs_spawn(pinger, NULL));
    for (intptr_t i = 0; i < WAITERS; i++) CHECK_ID(gs_spawn(waiter, (void *)i));
    CHECK_OK(gs_run());
    CHECK_EQ(ran, WAITERS);
    /* Every queued goroutine ran within a few thousand round trips of the start. */
    for (int i = 0; i < WAITERS; i++) CHECK(trips_seen[i] < 10000);
    CHECK_OK(gs_chan_free(ping));
    CHECK_OK(gs_chan_free(pong));
    timer_during_handoffs();
    return 0;
}
