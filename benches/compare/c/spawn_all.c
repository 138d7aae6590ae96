/* gostack: N goroutines spawned at once from the host thread, then all run to the end (gs_run);
 * ns per goroutine, one repetition per process (benches/compare runs it several times; Go's
 * counterpart is `compare-go spawnall`). Prints "raw<TAB>spawnall<TAB>ns". Usage: spawn_all [N] */
#define _GNU_SOURCE
#include "gostack.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void empty(void *arg) { (void)arg; }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    double t = now_ns();
    for (long i = 0; i < n; i++)
        if (gs_spawn(empty, NULL) <= 0) abort();
    if (gs_run() != GS_OK) abort();
    printf("raw\tspawnall\t%.4f\n", (now_ns() - t) / n);
    return 0;
}
