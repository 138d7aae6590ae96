/* GS_STACK_COPY (issue #16): the cost of a switch against what is live on the stack.
 *
 *   yield round trip at live depth D   two goroutines yield to each other, each with about D bytes
 *                                      live on its stack (a frame of D bytes below the usual
 *                                      ones); ns per round trip (A -> B -> A, two switches), for
 *                                      the GROWABLE kind (hand-off, no copy) and the COPY kind
 *                                      (through g0: copy out, copy in), in alternating runs.
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

static long rounds = 200000;
static size_t depth;
static double t_start, t_end;
static size_t live_seen;

static __attribute__((noinline)) void yielder(long n) {
    volatile char pad[depth > 0 ? depth : 1]; /* the live part this benchmark scales */
    pad[0] = 1;
    pad[depth > 0 ? depth - 1 : 0] = 1;
    gs_stack_info si;
    if (gs_get_stack_info(&si) != GS_OK) abort();
    live_seen = si.used;
    for (long i = 0; i < n; i++) gs_yield();
    (void)pad[0];
}

static void a_body(void *arg) {
    (void)arg;
    yielder(100); /* warm */
    t_start = now_ns();
    yielder(rounds);
    t_end = now_ns();
}

static void b_body(void *arg) {
    (void)arg;
    yielder(100 + rounds + 1);
}

static double one_run(uint32_t kind, size_t d) {
    gs_attr a;
    gs_attr_init(&a);
    a.stack_kind = kind;
    depth = d;
    if (gs_spawn_with(&a, a_body, NULL) <= 0 || gs_spawn_with(&a, b_body, NULL) <= 0) abort();
    if (gs_run() != GS_OK) abort();
    return (t_end - t_start) / (double)rounds;
}

int main(int argc, char **argv) {
    static const size_t depths[] = { 256, 1024, 4096, 16384 };
    static const uint32_t kinds[] = { GS_STACK_GROWABLE, GS_STACK_COPY };
    static const char *const kind_names[] = { "growable", "copy" };
    double v[2][4][RUNS];
    size_t live[2][4];
    if (argc > 1) rounds = atol(argv[1]);
    for (int r = 0; r < RUNS; r++)
        for (int d = 0; d < 4; d++)
            for (int k = 0; k < 2; k++) {
                v[k][d][r] = one_run(kinds[k], depths[d]);
                live[k][d] = live_seen;
            }
    for (int d = 0; d < 4; d++)
        for (int k = 0; k < 2; k++) {
            char name[96];
            snprintf(name, sizeof name, "yield round trip, %s, live %zu B", kind_names[k], depths[d]);
            print_raw(name, v[k][d], RUNS, 1.0);
            median(v[k][d], RUNS);
        }
    printf("%-12s %-10s %14s %14s %8s\n", "live (pad)", "measured", "growable ns", "copy ns", "ratio");
    for (int d = 0; d < 4; d++)
        printf("%-12zu %-10zu %14.1f %14.1f %8.2f\n", depths[d], live[1][d], v[0][d][RUNS / 2], v[1][d][RUNS / 2],
               v[1][d][RUNS / 2] / v[0][d][RUNS / 2]);
    return 0;
}
