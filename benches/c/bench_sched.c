/* gostack M:N scheduler benchmarks: spawn and yield throughput at P = 1 and 2 (or the given Ps),
 * and the speed-up of CPU-bound goroutines from 1 P to all Ps. Prints medians.
 * Run: bash benches/run_c.sh sched   (builds this file too) */
#define _GNU_SOURCE
#include "gostack.h"
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS 7


static void empty(void *arg) { (void)arg; }
static void spawner(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        gs_spawn(empty, NULL);
        if (i % 64 == 63) gs_yield();
    }
}
/* ns per goroutine: spawn + run + exit, spawned by one goroutine per P */
static double spawn_tp(int procs, long n) {
    gs_set_maxprocs(procs);
    double t = now_ns();
    for (int i = 0; i < procs; i++) gs_spawn(spawner, (void *)(n / procs));
    if (gs_run() != GS_OK) abort();
    return (now_ns() - t) / n;
}

static void yielder(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) gs_yield();
}
/* ns per yield, machine-wide: 4 goroutines per P yielding */
static double yield_tp(int procs, long n) {
    gs_set_maxprocs(procs);
    int g = 4 * procs;
    for (int i = 0; i < g; i++) gs_spawn(yielder, (void *)(n / g));
    double t = now_ns();
    if (gs_run() != GS_OK) abort();
    return (now_ns() - t) / n;
}

static volatile unsigned long sink;
static void cpu(void *arg) {
    unsigned long x = (unsigned long)arg, n = 20000000;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005ul + 1442695040888963407ul;
    sink += x;
}
/* seconds for 32 CPU-bound goroutines */
static double cpu_time(int procs) {
    gs_set_maxprocs(procs);
    double t = now_ns();
    for (int i = 0; i < 32; i++) gs_spawn(cpu, (void *)(long)(i + 1));
    if (gs_run() != GS_OK) abort();
    return (now_ns() - t) / 1e9;
}

int main(int argc, char **argv) {
    int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int hi = argc > 1 ? atoi(argv[1]) : (cpus < 2 ? 2 : cpus);
    double v[RUNS];
    printf("gostack %s scheduler benchmarks, %d online CPUs (%d runs each; medians)\n", gs_version(), cpus, RUNS);
    int ps[2] = {1, hi};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < RUNS; i++) v[i] = spawn_tp(ps[k], 400000);
        printf("spawn+run+exit throughput, P=%-2d       %8.2f ns/goroutine\n", ps[k], median(v, RUNS));
        for (int i = 0; i < RUNS; i++) v[i] = yield_tp(ps[k], 4000000);
        printf("yield throughput (4 goroutines/P), P=%-2d %6.2f ns/yield\n", ps[k], median(v, RUNS));
    }
    double t1[RUNS], tn[RUNS];
    for (int i = 0; i < RUNS; i++) { t1[i] = cpu_time(1); tn[i] = cpu_time(hi); }
    double a = median(t1, RUNS), b = median(tn, RUNS);
    printf("32 CPU-bound goroutines: P=1 %.3f s, P=%d %.3f s, speed-up %.2fx (ideal %dx)\n", a, hi, b, a / b, hi);
    return 0;
}
