/*
 * test_runnext_fairness: two goroutines handing a value back and forth through unbuffered
 * channels wake each other into the P's runnext slot and switch straight to each other. That
 * chain must not starve the goroutines waiting in the run queue (Go bounds it with the time
 * slice runnext inherits; gostack with a count of hand-offs in a row). With one P: a ping-pong
 * pair runs until the goroutines queued behind it have all run, and each of them must get its
 * turn within a bounded number of round trips.
 */
#include "gs_test.h"

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
    return 0;
}
