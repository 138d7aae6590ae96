/* gostack C-level benchmarks: what a C program linked against libgostack.so sees.
 * Prints median/min/max over RUNS runs. Run: bash benches/run_c.sh */
#define _GNU_SOURCE
#include "gostack.h"
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 11

static void report(const char *name, double *v) {
    print_raw(name, v, RUNS, 1.0);
    median(v, RUNS);
    printf("%-46s median %8.2f ns   (min %.2f, max %.2f, %d runs)\n", name, v[RUNS / 2], v[0], v[RUNS - 1], RUNS);
}

static void yielder(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) gs_yield();
}
static double yield_pair(long n) {
    gs_spawn(yielder, (void *)n);
    gs_spawn(yielder, (void *)n);
    double t = now_ns();
    if (gs_run() != GS_OK) abort();
    return (now_ns() - t) / (2.0 * n);
}

static void empty(void *arg) { (void)arg; }
static void spawner(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i += 1000) {
        for (int j = 0; j < 1000; j++) gs_spawn(empty, NULL);
        gs_yield(); /* the 1,000 children run and exit */
    }
}
static double spawn_in_goroutine(long n) {
    gs_spawn(spawner, (void *)n);
    double t = now_ns();
    if (gs_run() != GS_OK) abort();
    return (now_ns() - t) / n;
}
static double spawn_from_main(long n) {
    double t = now_ns();
    for (long i = 0; i < n; i += 1000) {
        for (int j = 0; j < 1000; j++) gs_spawn(empty, NULL);
        if (gs_run() != GS_OK) abort();
    }
    return (now_ns() - t) / n;
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : "";
    double v[RUNS];
    gs_set_maxprocs(1); /* the single-thread switch path; see bench_sched.c for several Ps */
    printf("gostack %s C-level benchmarks at P=1 (%d runs each)\n", gs_version(), RUNS);
    if (!*only || strstr("yield", only)) {
        for (int i = 0; i < RUNS; i++) v[i] = yield_pair(1000000);
        report("gs_yield between 2 goroutines, per switch", v);
    }
    if (!*only || strstr("spawn", only)) {
        for (int i = 0; i < RUNS; i++) v[i] = spawn_in_goroutine(200000);
        report("spawn+run+exit per goroutine (in goroutine)", v);
        for (int i = 0; i < RUNS; i++) v[i] = spawn_from_main(200000);
        report("spawn+run+exit per goroutine (from main)", v);
    }
    return 0;
}
