/*
 * bench_touch: the kernel's (and the hypervisor's) floor under a first-run growth to 64 MiB.
 * Touches N MiB (default 192: what a first-run growth to 64 MiB touches, every stack of the chain
 * plus the live 64 MiB) of a fresh MADV_HUGEPAGE mapping, top down, one store per 4 KiB page, in
 * a fresh forked process each run. Prints each run and the median of 12. No gostack involved.
 * On this VM most runs take ~7 ms and some take 5-30x that: the first-run growth figures of gostack
 * and Go meet the same outliers. Run: bash benches/run_growth.sh touch
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 12
#define HUGE (2ul << 20)

static double touch(size_t len) {
    char *m = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    char *p;
    double t;
    if (m == MAP_FAILED) abort();
    p = (char *)(((uintptr_t)m + HUGE - 1) & ~(HUGE - 1));
    madvise(p, len, MADV_HUGEPAGE);
    t = now_ns();
    for (size_t i = len; i > 0; i -= 4096) ((volatile char *)p)[i - 1] = 1;
    return now_ns() - t;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 192;
    double v[RUNS];
    for (int i = 0; i < RUNS; i++) {
        int fds[2];
        pid_t pid;
        if (pipe(fds) != 0) abort();
        pid = fork();
        if (pid < 0) abort();
        if (pid == 0) {
            double t = touch(mib << 20);
            if (write(fds[1], &t, sizeof t) != sizeof t) _exit(1);
            _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &v[i], sizeof v[i]) != sizeof v[i]) abort();
        close(fds[0]);
        waitpid(pid, NULL, 0);
        printf("run %2d: %8.1f ms\n", i, v[i] / 1e6);
    }
    print_raw("touch fresh memory", v, RUNS, 1e6);
    median(v, RUNS);
    printf("touch %zu MiB of fresh MADV_HUGEPAGE memory, fresh process: median %.1f ms (min %.1f, max %.1f, %d runs)\n",
           mib, v[RUNS / 2] / 1e6, v[0] / 1e6, v[RUNS - 1] / 1e6, RUNS);
    return 0;
}
