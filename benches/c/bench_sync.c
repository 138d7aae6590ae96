/* gostack synchronisation benchmarks (issue 5): what a C program sees. Prints the median (and
 * min/max) of RUNS runs, each the mean over many operations. Run: bash benches/run_sync.sh */
#define _GNU_SOURCE
#include "gostack.h"
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RUNS 11

static void report(const char *name, double *v) {
    print_raw(name, v, RUNS, 1.0);
    median(v, RUNS);
    printf("%-52s median %8.2f ns   (min %.2f, max %.2f, %d runs)\n", name, v[RUNS / 2], v[0], v[RUNS - 1], RUNS);
}
#define OK(x) do { if ((x) != GS_OK) { fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x); abort(); } } while (0)

/* ---- unbuffered ping-pong: one round trip = 2 sends + 2 receives, 2 switches -------------- */
static gs_chan *ping, *pong;
static void ponger(void *arg) {
    long n = (long)arg, v;
    for (long i = 0; i < n; i++) {
        OK(gs_chan_recv(ping, &v));
        v++;
        OK(gs_chan_send(pong, &v));
    }
}
static void pinger(void *arg) {
    long n = (long)arg, v = 0;
    for (long i = 0; i < n; i++) {
        OK(gs_chan_send(ping, &v));
        OK(gs_chan_recv(pong, &v));
    }
    if (v != n) abort();
}
static double pingpong(long n) {
    ping = gs_chan_new(sizeof(long), 0);
    pong = gs_chan_new(sizeof(long), 0);
    gs_spawn(ponger, (void *)n);
    gs_spawn(pinger, (void *)n);
    double t = now_ns();
    OK(gs_run());
    t = (now_ns() - t) / n;
    OK(gs_chan_free(ping));
    OK(gs_chan_free(pong));
    return t;
}

/* ---- buffered throughput: producer -> consumer through a 128-slot channel ------------------ */
static gs_chan *pipe_ch;
static void producer(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) OK(gs_chan_send(pipe_ch, &i));
    OK(gs_chan_close(pipe_ch));
}
static void consumer(void *arg) {
    long n = (long)arg, v, k = 0;
    while (gs_chan_recv(pipe_ch, &v) == GS_OK) k++;
    if (k != n) abort();
}
static double buffered(long n) {
    pipe_ch = gs_chan_new(sizeof(long), 128);
    gs_spawn(consumer, (void *)n);
    gs_spawn(producer, (void *)n);
    double t = now_ns();
    OK(gs_run());
    t = (now_ns() - t) / n;
    OK(gs_chan_free(pipe_ch));
    return t;
}

/* ---- select over 4 channels ----------------------------------------------------------------- */
static gs_chan *four[4];
static void four_sender(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) OK(gs_chan_send(four[i & 3], &i));
}
static void four_selector(void *arg) {
    long n = (long)arg, v;
    gs_case cs[4];
    for (int k = 0; k < 4; k++) cs[k] = (gs_case){four[k], GS_CASE_RECV, &v, 0};
    for (long i = 0; i < n; i++)
        if (gs_select(cs, 4, -1) < 0) abort();
}
/* A blocking select of 4 receive cases fed by an unbuffered sender (one switch each way). */
static double select4_blocking(long n) {
    for (int k = 0; k < 4; k++) four[k] = gs_chan_new(sizeof(long), 0);
    gs_spawn(four_selector, (void *)n);
    gs_spawn(four_sender, (void *)n);
    double t = now_ns();
    OK(gs_run());
    t = (now_ns() - t) / n;
    for (int k = 0; k < 4; k++) OK(gs_chan_free(four[k]));
    return t;
}
/* A select of 4 ready cases that never blocks (pure select cost). */
static double select4_ready(long n) {
    long v;
    gs_case cs[4];
    for (int k = 0; k < 4; k++) {
        four[k] = gs_chan_new(0, (size_t)n);
        for (long i = 0; i < n; i++) OK(gs_chan_try_send(four[k], NULL));
        cs[k] = (gs_case){four[k], GS_CASE_RECV, &v, 0};
    }
    double t = now_ns();
    for (long i = 0; i < n; i++)
        if (gs_select(cs, 4, 0) < 0) abort();
    t = (now_ns() - t) / n;
    for (int k = 0; k < 4; k++) OK(gs_chan_free(four[k]));
    return t;
}

/* ---- mutex ----------------------------------------------------------------------------------- */
static gs_mutex *mu;
static long counter;
static void locker(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        OK(gs_mutex_lock(mu));
        counter++;
        if ((i & 7) == 0) gs_yield(); /* hold it across a switch now and then: real contention */
        OK(gs_mutex_unlock(mu));
    }
}
static double mutex_contended(long n) {
    mu = gs_mutex_new();
    counter = 0;
    for (int k = 0; k < 4; k++) gs_spawn(locker, (void *)(n / 4));
    double t = now_ns();
    OK(gs_run());
    t = (now_ns() - t) / n;
    if (counter != n) abort();
    OK(gs_mutex_free(mu));
    return t;
}
static double mutex_uncontended(long n) {
    mu = gs_mutex_new();
    double t = now_ns();
    for (long i = 0; i < n; i++) {
        OK(gs_mutex_lock(mu));
        OK(gs_mutex_unlock(mu));
    }
    t = (now_ns() - t) / n;
    OK(gs_mutex_free(mu));
    return t;
}

/* ---- reference: a plain switch, to compare runs made while the machine is busy ------------ */
static void yielder(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) gs_yield();
}
static double yield_switch(long n) {
    gs_spawn(yielder, (void *)n);
    gs_spawn(yielder, (void *)n);
    double t = now_ns();
    OK(gs_run());
    return (now_ns() - t) / (2.0 * n);
}

int main(int argc, char **argv) {
    long scale = argc > 1 ? atol(argv[1]) : 1;
    double v[RUNS];
    gs_stats st;
    OK(gs_get_stats(&st));
    printf("gostack sync benchmarks, maxprocs %u\n", st.maxprocs);
    for (int r = 0; r < RUNS; r++) v[r] = yield_switch(500000 * scale);
    report("(reference) gs_yield between 2 goroutines, per switch", v);
    for (int r = 0; r < RUNS; r++) v[r] = pingpong(200000 * scale);
    report("unbuffered ping-pong, per round trip", v);
    for (int r = 0; r < RUNS; r++) v[r] = buffered(1000000 * scale);
    report("buffered (cap 128) producer->consumer, per message", v);
    for (int r = 0; r < RUNS; r++) v[r] = select4_blocking(200000 * scale);
    report("select of 4 receives, blocking, per message", v);
    for (int r = 0; r < RUNS; r++) v[r] = select4_ready(200000 * scale);
    report("select of 4 ready receives (timeout 0), per select", v);
    for (int r = 0; r < RUNS; r++) v[r] = mutex_contended(400000 * scale);
    report("mutex, 4 goroutines contending, per lock+unlock", v);
    for (int r = 0; r < RUNS; r++) v[r] = mutex_uncontended(1000000 * scale);
    report("mutex, uncontended (host thread), per lock+unlock", v);
    return 0;
}
