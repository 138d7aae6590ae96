/* What pinning costs (issue 20, docs/PERFORMANCE.md "Pinned or migratable"): the same work with
 * goroutines pinned to the thread they first ran on (the default) and spawned GS_SPAWN_MIGRATABLE.
 * 1. Ping-pong between two goroutines that first ran on different threads (P=2): pinned, every
 *    message wakes the other thread; migratable, the pair can settle on one thread.
 * 2. 8 CPU-bound goroutines yielding between slices, at P=2: wall time vs the ideal (total/2) and
 *    how many goroutines ended on each thread.
 * Run: cc -O2 -Iinclude benches/c/bench_pinning.c -Ltarget/release -lgostack \
 *        -Wl,-rpath,$PWD/target/release -lpthread -o /tmp/bench_pinning && /tmp/bench_pinning */
#define _GNU_SOURCE
#include "gostack.h"
#include "bench_util.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RUNS 5

static gs_chan *ping, *pong;
static volatile int started;
static long rounds;

static void wait_both(void) {
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    double t0 = now_ns();
    /* Busy until the partner runs too: with 2 Ps it must be on the other thread. */
    while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 2 && now_ns() - t0 < 2e9) {
    }
}

static void pinger(void *arg) {
    (void)arg;
    wait_both();
    long v = 0;
    for (long i = 0; i < rounds; i++) {
        gs_chan_send(ping, &v);
        gs_chan_recv(pong, &v);
    }
}

static void ponger(void *arg) {
    (void)arg;
    wait_both();
    long v;
    for (long i = 0; i < rounds; i++) {
        gs_chan_recv(ping, &v);
        gs_chan_send(pong, &v);
    }
}

static double pingpong(uint32_t flags, long n) {
    gs_attr a;
    gs_attr_init(&a);
    a.flags = flags;
    rounds = n;
    started = 0;
    ping = gs_chan_new(sizeof(long), 0);
    pong = gs_chan_new(sizeof(long), 0);
    gs_spawn_with(&a, pinger, NULL);
    gs_spawn_with(&a, ponger, NULL);
    double t = now_ns();
    if (gs_run() != GS_OK) abort();
    t = (now_ns() - t) / n;
    gs_chan_free(ping);
    gs_chan_free(pong);
    return t;
}

enum { NG = 8, SLICES = 40 };
static volatile unsigned long sink;
static int tids[NG];

static void cpu(void *arg) {
    long id = (long)arg;
    unsigned long x = (unsigned long)id + 1;
    for (int s = 0; s < SLICES; s++) {
        for (long i = 0; i < 1000000; i++) x = x * 6364136223846793005ul + 1442695040888963407ul;
        gs_yield();
    }
    sink += x;
    tids[id] = (int)syscall(SYS_gettid);
}

static double cpu_run(uint32_t flags, char *where, size_t len) {
    gs_attr a;
    gs_attr_init(&a);
    a.flags = flags;
    for (long i = 0; i < NG; i++) gs_spawn_with(&a, cpu, (void *)i);
    double t = now_ns();
    if (gs_run() != GS_OK) abort();
    t = (now_ns() - t) / 1e9;
    /* goroutines per thread they ended on */
    int seen[NG], count[NG], k = 0;
    for (int i = 0; i < NG; i++) {
        int j = 0;
        while (j < k && seen[j] != tids[i]) j++;
        if (j == k) { seen[k] = tids[i]; count[k++] = 0; }
        count[j]++;
    }
    size_t off = 0;
    for (int j = 0; j < k && off < len; j++) off += (size_t)snprintf(where + off, len - off, "%s%d", j ? "/" : "", count[j]);
    return t;
}

static double cpu_one(void) {
    /* one goroutine's work alone, for the ideal */
    gs_spawn(cpu, (void *)0);
    double t = now_ns();
    gs_run();
    return (now_ns() - t) / 1e9;
}

int main(void) {
    double v[RUNS], w[RUNS];
    gs_set_maxprocs(2);
    printf("gostack %s: pinned vs GS_SPAWN_MIGRATABLE at P=2 (%d runs, medians)\n", gs_version(), RUNS);
    for (int i = 0; i < RUNS; i++) { v[i] = pingpong(0, 20000); w[i] = pingpong(GS_SPAWN_MIGRATABLE, 200000); }
    printf("ping-pong, partners first ran on 2 threads: pinned %.0f ns/round trip, migratable %.0f ns\n",
           median(v, RUNS), median(w, RUNS));
    char where[RUNS][64], where_m[RUNS][64];
    double one = cpu_one();
    for (int i = 0; i < RUNS; i++) { v[i] = cpu_run(0, where[i], 64); w[i] = cpu_run(GS_SPAWN_MIGRATABLE, where_m[i], 64); }
    printf("8 CPU-bound goroutines x %d slices, yielding: ideal %.3f s (8 x %.3f s / 2)\n", SLICES, one * NG / 2, one);
    printf("  pinned:     median %.3f s; goroutines per thread at the end:", median(v, RUNS));
    for (int i = 0; i < RUNS; i++) printf(" %s", where[i]);
    printf("\n  migratable: median %.3f s; goroutines per thread at the end:", median(w, RUNS));
    for (int i = 0; i < RUNS; i++) printf(" %s", where_m[i]);
    printf("\n");
    return 0;
}
