/* gostack stack-growth benchmarks (issue 3). Prints medians; run: bash benches/run_growth.sh
 *
 *   grow to 1 MiB / 64 MiB   a goroutine (default initial stack, 32 KiB) recurses through
 *                            ~1 KiB frames until that much stack is in use; timed inside the
 *                            goroutine. "first run": in a fresh forked process each time (cold
 *                            pools, cold pages); "warm": repeated in one process. Growth by guard
 *                            faults (plain C) and by GS_STACK_CHECK in every frame. "grow warm":
 *                            the warm rows only (benches/compare interleaves first runs with Go's).
 *   100k x 64 KiB            100,000 goroutines, each growing to 64 KiB and exiting (Go's
 *                            1.44-1.65 s at GOMAXPROCS=1), for several initial sizes
 *   parked goroutine memory  1,000,000 goroutines each yield once; while all are parked in the
 *                            run queue, (RSS - RSS before spawning) / N, for several initial sizes
 *   shrink                   cost of a gs_yield that shrinks a 1 MiB stack to 32 KiB vs madvise
 *                            of the dead part in place
 */
#define _GNU_SOURCE
#include "gostack.h"
#include "bench_util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 11

static void report(const char *name, double *v, int n, double scale, const char *unit) {
    print_raw(name, v, n, scale);
    median(v, n);
    printf("%-58s median %10.3f %s   (min %.3f, max %.3f, %d runs)\n", name, v[n / 2] / scale, unit,
           v[0] / scale, v[n - 1] / scale, n);
}

/* ---- grow to N bytes --------------------------------------------------------------------- */

static size_t target;
static int use_check;
static double elapsed;

/* `top` is an address in the goroutine's stack passed down as an argument: it moves with the
 * stack (a copy kept in a global would not: the contract). */
static __attribute__((noinline)) size_t dig(char *top, size_t depth) {
    volatile char pad[1000];
    pad[0] = (char)depth;
    if (use_check && GS_STACK_CHECK(2048) != GS_OK) abort();
    if ((size_t)(top - (char *)__builtin_frame_address(0)) < target) return dig(top, depth + 1) + (size_t)pad[0];
    return 0;
}

static void grow_body(void *arg) {
    double t0 = now_ns();
    (void)arg;
    (void)dig(__builtin_frame_address(0), 0);
    elapsed = now_ns() - t0;
}

static double grow_once(size_t bytes, int check) {
    target = bytes;
    use_check = check;
    if (gs_spawn(grow_body, NULL) <= 0 || gs_run() != GS_OK) abort();
    return elapsed;
}

/* Runs this program again (a fresh process: nothing warm, no copy-on-write pages shared with a
 * parent) with `args`, and returns the number it prints. */
static double run_child(const char *a1, const char *a2, const char *a3) {
    int fds[2];
    char buf[128] = {0};
    ssize_t n;
    pid_t pid;
    if (pipe(fds) != 0) abort();
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/proc/self/exe", "bench_growth", "child", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    if (n <= 0) abort();
    return strtod(buf, NULL);
}

static double grow_first_run(size_t bytes, int check) {
    char b[32], c[8];
    snprintf(b, sizeof b, "%zu", bytes);
    snprintf(c, sizeof c, "%d", check);
    return run_child("grow", b, c);
}

/* ---- many goroutines growing ---------------------------------------------------------------- */

static void grow64k(void *arg) {
    (void)arg;
    target = 60 * 1024;
    (void)dig(__builtin_frame_address(0), 0);
}

static size_t attr_size;

static double many_growing(long n, int check, uint64_t *grows) {
    gs_attr a;
    gs_stats s0, s1;
    gs_attr_init(&a);
    a.stack_size = attr_size;
    use_check = check;
    gs_get_stats(&s0);
    double t = now_ns();
    for (long i = 0; i < n; i++)
        if (gs_spawn_with(&a, grow64k, NULL) <= 0) abort();
    if (gs_run() != GS_OK) abort();
    t = now_ns() - t;
    gs_get_stats(&s1);
    *grows = s1.stack_grows - s0.stack_grows;
    return t;
}

/* ---- parked goroutine memory ------------------------------------------------------------------ */

static long rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2) abort();
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* Page-table memory (VmPTE in /proc/self/status): RSS does not include it, but every stack
 * touched in a different 2 MiB region costs page-table pages, and guard size decides how many. */
static long pte_bytes(void) {
    char line[256];
    long kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) abort();
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmPTE: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static long rss_parked, pte_parked;

static void park_once(void *arg) {
    (void)arg;
    gs_yield();
}
static void measure(void *arg) {
    (void)arg;
    rss_parked = rss_bytes();
    pte_parked = pte_bytes();
}

/* RSS per parked goroutine with `n` goroutines of initial size `size` (run in a fresh process). */
static double parked_memory_here(long n, size_t size) {
    gs_attr a;
    long before, pte_before;
    gs_attr_init(&a);
    a.stack_size = size;
    before = rss_bytes();
    pte_before = pte_bytes();
    for (long i = 0; i < n; i++)
        if (gs_spawn_with(&a, park_once, NULL) <= 0) abort();
    if (gs_spawn(measure, NULL) <= 0) abort(); /* runs after every goroutine has yielded once */
    if (gs_run() != GS_OK) abort();
    if (getenv("BENCH_RSS_ONLY") != NULL) return (double)(rss_parked - before) / n;
    return (double)(rss_parked - before + pte_parked - pte_before) / n;
}

static double parked_memory(long n, size_t size) {
    char a[32], b[32];
    snprintf(a, sizeof a, "%ld", n);
    snprintf(b, sizeof b, "%zu", size);
    return run_child("parked", a, b);
}

/* ---- shrinking ------------------------------------------------------------------------------------ */

static double shrink_ns, noshrink_ns;
static size_t initial; /* the default initial reservation of a GROWABLE stack */

static void probe_initial(void *arg) {
    gs_stack_info si;
    (void)arg;
    if (gs_get_stack_info(&si) != GS_OK) abort();
    initial = si.size;
}

static void shrinker(void *arg) {
    double t;
    (void)arg;
    target = 900 * 1024;
    use_check = 0;
    (void)dig(__builtin_frame_address(0), 0); /* grow to 1 MiB */
    t = now_ns();
    gs_yield(); /* first safe point below 1/4: no shrink yet */
    noshrink_ns = now_ns() - t;
    t = now_ns();
    gs_yield(); /* second: shrinks 1 MiB -> the initial size */
    shrink_ns = now_ns() - t;
}

static double madvise_in_place(void) {
    size_t len = 1 << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    double t;
    memset(p, 1, len);
    t = now_ns();
    madvise(p, len - initial, MADV_DONTNEED); /* the dead part below the live top */
    t = now_ns() - t;
    munmap(p, len);
    return t;
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : "";
    double v[RUNS];
    uint64_t grows = 0;
    if (strcmp(only, "child") == 0 && argc == 5) { /* see run_child */
        if (strcmp(argv[2], "grow") == 0)
            printf("%f\n", grow_once(strtoul(argv[3], NULL, 0), atoi(argv[4])));
        else
            printf("%f\n", parked_memory_here(strtol(argv[3], NULL, 0), strtoul(argv[4], NULL, 0)));
        return 0;
    }
    if (gs_spawn(probe_initial, NULL) <= 0 || gs_run() != GS_OK) abort();
    printf("gostack %s stack-growth benchmarks (GOSTACK_MAXPROCS=%s, default initial stack %zu KiB)\n", gs_version(),
           getenv("GOSTACK_MAXPROCS") ? getenv("GOSTACK_MAXPROCS") : "default", initial / 1024);
    if (!*only || strstr("grow", only)) {
        /* First runs (a fresh process each), then warm (repeated in this process). */
        static const struct {
            const char *when;
            double (*grow)(size_t bytes, int check);
        } modes[] = {{"first run", grow_first_run}, {"warm", grow_once}};
        for (int k = 0; k < 2; k++) {
            if (k == 0 && argc > 2 && strcmp(argv[2], "warm") == 0) continue; /* "grow warm": warm only */
            for (int check = 0; check < 2; check++) {
                const char *how = check ? "GS_STACK_CHECK" : "guard faults";
                char name[96];
                for (int i = 0; i < RUNS; i++) v[i] = modes[k].grow(1 << 20, check);
                snprintf(name, sizeof name, "grow %zu KiB -> 1 MiB, %s (%s)", initial / 1024, modes[k].when, how);
                report(name, v, RUNS, 1e6, "ms");
                for (int i = 0; i < 5; i++) v[i] = modes[k].grow(64 << 20, check);
                snprintf(name, sizeof name, "grow %zu KiB -> 64 MiB, %s (%s)", initial / 1024, modes[k].when, how);
                report(name, v, 5, 1e6, "ms");
            }
        }
    }
    if (!*only || strstr("many", only)) {
        size_t sizes[] = {8192, 16384, 32768, 65536, 262144};
        for (int s = 0; s < 5; s++) {
            char name[96];
            if (argc > 2 && strtoul(argv[2], NULL, 0) != sizes[s]) continue; /* one size only */
            attr_size = sizes[s];
            for (int check = 0; check < 2; check++) {
                if (check && sizes[s] != initial) continue; /* checks: the default size only */
                for (int i = 0; i < 5; i++) v[i] = many_growing(100000, check, &grows);
                snprintf(name, sizeof name, "100k goroutines x grow to 64 KiB, initial %zu KiB%s", sizes[s] / 1024,
                         check ? " (checks)" : "");
                report(name, v, 5, 1e9, "s ");
                printf("    grows per goroutine: %.2f\n", grows / 100000.0);
            }
        }
    }
    if (!*only || strstr("parked", only)) {
        size_t sizes[] = {8192, 16384, 32768, 65536};
        for (int s = 0; s < 4; s++) {
            char name[96];
            if (argc > 2 && strtoul(argv[2], NULL, 0) != sizes[s]) continue;
            for (int i = 0; i < 3; i++) v[i] = parked_memory(1000000, sizes[s]);
            snprintf(name, sizeof name, "per parked goroutine (1M), RSS+page tables, initial %zu KiB", sizes[s] / 1024);
            report(name, v, 3, 1, "B ");
            setenv("BENCH_RSS_ONLY", "1", 1);
            for (int i = 0; i < 3; i++) v[i] = parked_memory(1000000, sizes[s]);
            unsetenv("BENCH_RSS_ONLY");
            snprintf(name, sizeof name, "per parked goroutine (1M), RSS only, initial %zu KiB", sizes[s] / 1024);
            report(name, v, 3, 1, "B ");
        }
    }
    if (!*only || strstr("shrink", only)) {
        double a[RUNS], b[RUNS];
        char name[96];
        for (int i = 0; i < RUNS; i++) {
            if (gs_spawn(shrinker, NULL) <= 0 || gs_run() != GS_OK) abort();
            a[i] = shrink_ns;
            b[i] = noshrink_ns;
            v[i] = madvise_in_place();
        }
        snprintf(name, sizeof name, "gs_yield that shrinks 1 MiB -> %zu KiB (relocate+madvise)", initial / 1024);
        report(name, a, RUNS, 1e3, "us");
        report("gs_yield that does not shrink (same goroutine)", b, RUNS, 1e3, "us");
        snprintf(name, sizeof name, "madvise(DONTNEED) of 1 MiB - %zu KiB in place", initial / 1024);
        report(name, v, RUNS, 1e3, "us");
    }
    (void)median;
    return 0;
}
