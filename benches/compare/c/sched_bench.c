/* gostack's side of the scheduler comparison (issue 21); Go's counterparts are `compare-go
 * threadring|xpingpong|fanout`. One workload per process, one repetition per process (placement
 * of goroutines on threads is decided once per run, so runs must be separate processes to show
 * how it varies); the P count comes from GOSTACK_MAXPROCS. Prints "raw<TAB>name<TAB>value".
 *
 *   sched_bench threadring N     503 goroutines in a ring of unbuffered channels pass a token N
 *                                times (the Benchmarks Game's thread-ring): ns per hop
 *   sched_bench xpingpong N      unbuffered ping-pong between two goroutines that first ran on
 *                                different threads (each busy-waits until the other runs, so
 *                                with 2 Ps they start on 2 threads and stay there): ns per round trip
 *   sched_bench fanout K SLICES  K CPU-bound goroutines, each SLICES slices of ~1 ms with gs_yield
 *                                between, spawned by one goroutine that collects their results
 *                                on a channel: seconds of wall time
 */
#define _GNU_SOURCE
#include "gostack.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void check(int rc, const char *what) {
    if (rc != GS_OK) {
        fprintf(stderr, "sched_bench: %s: %s\n", what, gs_strerror(rc));
        exit(1);
    }
}

/* ---- thread-ring ---- */
enum { RING = 503 };
static gs_chan *ring[RING];
static gs_chan *ring_done;
static int ring_tid[RING];

/* SCHED_BENCH_WHERE=1: after the ring, print on stderr how many hops of a lap cross threads and
 * how many members each thread ran. */
static void ring_where(void) {
    if (getenv("SCHED_BENCH_WHERE") == NULL) return;
    int cross = 0, tids[RING], counts[RING], k = 0;
    for (int i = 0; i < RING; i++) {
        cross += ring_tid[i] != ring_tid[(i + 1) % RING];
        int j = 0;
        while (j < k && tids[j] != ring_tid[i]) j++;
        if (j == k) {
            tids[k] = ring_tid[i];
            counts[k++] = 0;
        }
        counts[j]++;
    }
    fprintf(stderr, "thread-ring: %d of %d hops per lap cross threads; members per thread:", cross, RING);
    for (int j = 0; j < k; j++) fprintf(stderr, " %d", counts[j]);
    fprintf(stderr, "\n");
    if (getenv("SCHED_BENCH_WHERE")[0] == '2') {
        fprintf(stderr, "runs (thread of member 0 = a):");
        int start = 0;
        for (int i = 1; i <= RING; i++)
            if (i == RING || ring_tid[i] != ring_tid[start]) {
                fprintf(stderr, " %c%d-%d", ring_tid[start] == ring_tid[0] ? 'a' : 'b', start, i - 1);
                start = i;
            }
        fprintf(stderr, "\n");
    }
}

static void ring_member(void *arg) {
    long id = (long)arg;
    gs_chan *in = ring[id], *out = ring[(id + 1) % RING];
    ring_tid[id] = (int)syscall(SYS_gettid);
    for (;;) {
        long token;
        check(gs_chan_recv(in, &token), "recv");
        if (token == 0) {
            long who = id + 1;
            check(gs_chan_send(ring_done, &who), "send done");
            return;
        }
        token--;
        check(gs_chan_send(out, &token), "send");
    }
}

static long ring_n;
static double ring_ns;

static void ring_main(void *arg) {
    (void)arg;
    for (long i = 0; i < RING; i++) ring[i] = gs_chan_new(sizeof(long), 0);
    ring_done = gs_chan_new(sizeof(long), 0);
    double t = now_ns();
    for (long i = 0; i < RING; i++)
        if (gs_spawn(ring_member, (void *)i) <= 0) exit(1);
    long token = ring_n, who;
    check(gs_chan_send(ring[0], &token), "send token");
    check(gs_chan_recv(ring_done, &who), "recv done");
    ring_ns = (now_ns() - t) / (double)ring_n;
    ring_where();
    if (who != ring_n % RING + 1) {
        fprintf(stderr, "thread-ring: member %ld ended, expected %ld\n", who, ring_n % RING + 1);
        exit(1);
    }
    /* The other members wait for ever on their channels: gs_main returns once main is done. */
}

/* ---- cross-thread ping-pong ---- */
static gs_chan *ping, *pong;
static int started;
static long pp_n;

static void wait_partner(void) {
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    double t0 = now_ns();
    while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 2 && now_ns() - t0 < 2e9) {
    }
}

static void pinger(void *arg) {
    double *out = arg;
    wait_partner();
    long v = 0;
    double t = now_ns();
    for (long i = 0; i < pp_n; i++) {
        check(gs_chan_send(ping, &v), "ping");
        check(gs_chan_recv(pong, &v), "pong");
    }
    *out = (now_ns() - t) / (double)pp_n;
    if (v != pp_n) exit(1);
}

static void ponger(void *arg) {
    (void)arg;
    wait_partner();
    long v;
    for (long i = 0; i < pp_n; i++) {
        check(gs_chan_recv(ping, &v), "ping");
        v++;
        check(gs_chan_send(pong, &v), "pong");
    }
}

/* ---- fan-out / fan-in ---- */
static gs_chan *results;
static int fan_k, fan_slices;
static double fan_s;

static void worker(void *arg) {
    uint64_t x = (uint64_t)(uintptr_t)arg + 1;
    for (int s = 0; s < fan_slices; s++) {
        for (long i = 0; i < 800000; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
        gs_yield();
    }
    check(gs_chan_send(results, &x), "result");
}

static void fan_main(void *arg) {
    (void)arg;
    results = gs_chan_new(sizeof(uint64_t), 0);
    double t = now_ns();
    for (long i = 0; i < fan_k; i++)
        if (gs_spawn(worker, (void *)i) <= 0) exit(1);
    uint64_t sum = 0, x;
    for (int i = 0; i < fan_k; i++) {
        check(gs_chan_recv(results, &x), "collect");
        sum += x;
    }
    fan_s = (now_ns() - t) / 1e9;
    if (sum == 42) printf("(unlikely)\n");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of sched_bench.c\n");
        return 2;
    }
    int procs = gs_maxprocs();
    const char *mig = getenv("GOSTACK_MIGRATE");
    const char *tag = mig != NULL && strcmp(mig, "1") == 0 ? " migrate" : "";
    if (strcmp(argv[1], "threadring") == 0) {
        ring_n = atol(argv[2]);
        check(gs_main(ring_main, NULL), "gs_main");
        printf("raw\tthreadring P=%d%s\t%.4f\n", procs, tag, ring_ns);
    } else if (strcmp(argv[1], "xpingpong") == 0) {
        pp_n = atol(argv[2]);
        double ns = 0;
        ping = gs_chan_new(sizeof(long), 0);
        pong = gs_chan_new(sizeof(long), 0);
        if (gs_spawn(pinger, &ns) <= 0 || gs_spawn(ponger, NULL) <= 0) return 1;
        check(gs_run(), "gs_run");
        printf("raw\txpingpong P=%d%s\t%.4f\n", procs, tag, ns);
    } else if (strcmp(argv[1], "fanout") == 0 && argc >= 4) {
        fan_k = atoi(argv[2]);
        fan_slices = atoi(argv[3]);
        check(gs_main(fan_main, NULL), "gs_main");
        printf("raw\tfanout P=%d%s\t%.6f\n", procs, tag, fan_s);
    } else {
        fprintf(stderr, "unknown workload %s\n", argv[1]);
        return 2;
    }
    return 0;
}
