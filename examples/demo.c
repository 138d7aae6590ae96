/* gostack demo: 10,000 goroutines take turns on as many threads as there are CPUs, one of them on
 * a FIXED stack, one calls into the thread's own stack; the runtime's counters at the end.
 * Build and run: bash examples/demo.sh */
#include "gostack.h"
#include <stdio.h>
#include <stdlib.h>

#define N 10000
#define ROUNDS 10

static long turns; /* goroutines run on several threads (one per CPU): count atomically */

static void worker(void *arg) {
    long id = (long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        __atomic_fetch_add(&turns, 1, __ATOMIC_RELAXED);
        gs_yield();                      /* let the other 9,999 run */
    }
    if (id == 0)
        printf("goroutine %lld finished its %d rounds\n", (long long)gs_self(), ROUNDS);
}

static void deep(void *arg) {
    /* runs on the thread's own stack: fine for deep or stack-address-publishing C code */
    char buf[512 * 1024];
    snprintf(buf, sizeof buf, "hello from the system stack of goroutine %lld", (long long)gs_self());
    puts(buf);
    (void)arg;
}

static void leader(void *arg) {
    (void)arg;
    gs_stack_info si;
    gs_get_stack_info(&si);
    printf("leader runs on a %zu-byte %s stack, %zu bytes used\n", si.size,
           si.kind == GS_STACK_FIXED ? "FIXED" : "GROWABLE", si.used);
    gs_systemstack(deep, NULL);
}

int main(void) {
    printf("gostack %s\n", gs_version());
    for (long i = 0; i < N; i++)
        if (gs_spawn(worker, (void *)i) < 0) { fprintf(stderr, "spawn failed\n"); return 1; }
    gs_attr a;
    gs_attr_init(&a);
    a.stack_kind = GS_STACK_FIXED;
    a.stack_size = 64 * 1024;
    a.name = "leader";
    gs_spawn_with(&a, leader, NULL);
    int rc = gs_run();                   /* this thread runs goroutines until all have exited */
    gs_stats st;
    gs_get_stats(&st);
    printf("gs_run: %s; %ld turns; %llu goroutines run, %llu switches, %llu KiB of stack resident\n",
           gs_strerror(rc), turns, (unsigned long long)st.goroutines_total,
           (unsigned long long)st.switches, (unsigned long long)st.stack_committed / 1024);
    return rc == GS_OK && turns == (long)N * ROUNDS ? 0 : 1;
}
