/* GS_STACK_COPY (issue #16): the cost of a switch against what is live on the stack.
 *
 *   yield round trip at live depth D   two goroutines yield to each other, each with about D bytes
 *                                      live on its stack (a frame of D bytes below the usual
 *                                      ones); ns per round trip (A -> B -> A, two switches), for
 *                                      the GROWABLE kind and the COPY kind, in alternating runs.
 *                                      COPY: each has a slot of its own, nothing is copied.
 *   the same with 64 goroutines        taking turns on one thread (FIFO), ns per two switches:
 *                                      more than an M's slots (copystack.rs SLOTS), so for COPY
 *                                      every switch evicts (copies the slot's resident out) and
 *                                      copies the incoming goroutine in: the worst case.
 *
 * Usage: bench_copy [rounds]. BENCH_RAW=1 prints every run (benches/compare). Run with
 * GOSTACK_MAXPROCS=1. */
#define _GNU_SOURCE
#include "gostack.h"
#include "bench_util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 11
#define NDEPTHS 4
#define NCROWDS 2

static long rounds = 200000;
static size_t depth;
static double t_start, t_end;
static size_t live_seen;
static volatile int stop;

/* n >= 0: yield n times; n < 0: yield until `stop`. */
static __attribute__((noinline)) void yielder(long n) {
    volatile char pad[depth > 0 ? depth : 1]; /* the live part this benchmark scales */
    pad[0] = 1;
    pad[depth > 0 ? depth - 1 : 0] = 1;
    gs_stack_info si;
    if (gs_get_stack_info(&si) != GS_OK) abort();
    live_seen = si.used;
    if (n < 0)
        while (!stop) gs_yield();
    else
        for (long i = 0; i < n; i++) gs_yield();
    (void)pad[0];
}

static long timed_rounds;

static void a_body(void *arg) {
    (void)arg;
    yielder(100); /* warm */
    t_start = now_ns();
    yielder(timed_rounds);
    t_end = now_ns();
    stop = 1;
}

static void b_body(void *arg) {
    (void)arg;
    yielder(-1);
}

/* ns per two switches (a round trip when n == 2), n goroutines taking turns on one thread. */
static double one_run(uint32_t kind, size_t d, int n) {
    gs_attr a;
    gs_attr_init(&a);
    a.stack_kind = kind;
    depth = d;
    stop = 0;
    timed_rounds = rounds * 2 / n; /* the same number of switches whatever n */
    if (gs_spawn_with(&a, a_body, NULL) <= 0) abort();
    for (int i = 1; i < n; i++)
        if (gs_spawn_with(&a, b_body, NULL) <= 0) abort();
    if (gs_run() != GS_OK) abort();
    return (t_end - t_start) / (double)(timed_rounds * n) * 2.0;
}

int main(int argc, char **argv) {
    static const size_t depths[NDEPTHS] = { 256, 1024, 4096, 16384 };
    static const int crowds[NCROWDS] = { 2, 64 };
    static const uint32_t kinds[] = { GS_STACK_GROWABLE, GS_STACK_COPY };
    static const char *const kind_names[] = { "growable", "copy" };
    static double v[NCROWDS][2][NDEPTHS][RUNS];
    size_t live[NDEPTHS];
    if (argc > 1) rounds = atol(argv[1]);
    for (int r = 0; r < RUNS; r++)
        for (int c = 0; c < NCROWDS; c++)
            for (int d = 0; d < NDEPTHS; d++)
                for (int k = 0; k < 2; k++) {
                    v[c][k][d][r] = one_run(kinds[k], depths[d], crowds[c]);
                    if (k == 1 && c == 0) live[d] = live_seen;
                }
    for (int c = 0; c < NCROWDS; c++)
        for (int d = 0; d < NDEPTHS; d++)
            for (int k = 0; k < 2; k++) {
                char name[128];
                snprintf(name, sizeof name, "yield round trip, %d goroutines, %s, live %zu B", crowds[c],
                         kind_names[k], depths[d]);
                print_raw(name, v[c][k][d], RUNS, 1.0);
                median(v[c][k][d], RUNS);
            }
    printf("ns per two switches (a round trip with 2 goroutines); medians of %d runs\n", RUNS);
    printf("%-10s %-9s %11s %11s %6s %11s %11s %6s\n", "live (pad)", "measured", "2: growable", "2: copy", "ratio",
           "64: growable", "64: copy", "ratio");
    for (int d = 0; d < NDEPTHS; d++)
        printf("%-10zu %-9zu %11.1f %11.1f %6.2f %11.1f %11.1f %6.2f\n", depths[d], live[d], v[0][0][d][RUNS / 2],
               v[0][1][d][RUNS / 2], v[0][1][d][RUNS / 2] / v[0][0][d][RUNS / 2], v[1][0][d][RUNS / 2],
               v[1][1][d][RUNS / 2], v[1][1][d][RUNS / 2] / v[1][0][d][RUNS / 2]);
    return 0;
}
