/* Helpers shared by the C benchmarks: a monotonic clock, sorting runs, and BENCH_RAW output. */
#ifndef GOSTACK_BENCH_UTIL_H
#define GOSTACK_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static inline int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the n runs in place and returns the median. */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* BENCH_RAW=1: print every run, divided by `scale`, as "raw<TAB>name<TAB>value" (benches/compare
 * reads these). Call before sorting, so runs keep their order. */
static inline void print_raw(const char *name, const double *v, int n, double scale) {
    if (getenv("BENCH_RAW") != NULL)
        for (int i = 0; i < n; i++) printf("raw\t%s\t%.6f\n", name, v[i] / scale);
}

#endif
