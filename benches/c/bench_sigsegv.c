/*
 * bench_sigsegv: the kernel's floor under growth by guard faults. A store into a PROT_NONE page
 * raises SIGSEGV; the handler (on a sigaltstack, as gostack's) only steps over the 7-byte store.
 * Prints the median cost of one fault -> handler -> sigreturn round trip over 11 runs of 200,000.
 * No gostack involved. Run: bash benches/run_growth.sh signal
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#define RUNS 11
#define N 200000

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)info;
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP] += 7; /* movq $1, (%reg) */
}

static double one_run(char *page) {
    double t = now_ns();
    for (int k = 0; k < N; k++) __asm__ volatile("movq $1, (%0)" : : "r"(page) : "memory");
    return (now_ns() - t) / N;
}

int main(void) {
    char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0};
    struct sigaction sa = {0};
    double v[RUNS];
    if (page == MAP_FAILED || ss.ss_sp == NULL || sigaltstack(&ss, NULL) != 0) abort();
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    if (sigaction(SIGSEGV, &sa, NULL) != 0) abort();
    for (int r = 0; r < RUNS; r++) v[r] = one_run(page);
    median(v, RUNS);
    printf("bare SIGSEGV round trip (fault, handler on sigaltstack, sigreturn)  median %8.2f ns   (min %.2f, max %.2f, %d runs)\n",
           v[RUNS / 2], v[0], v[RUNS - 1], RUNS);
    return 0;
}
