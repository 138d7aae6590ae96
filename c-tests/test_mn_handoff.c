/* M:N: a thread entering gs_run while workers hold every P queues for one and must get it.
 * Regression: the P handed to it before its first sleep was lost, and every thread slept forever
 * (the runner's timeout catches a hang). Many short rounds widen the window. */
#include "gs_test.h"

static void empty(void *arg) { (void)arg; }
static void yielder(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) CHECK_OK(gs_yield());
}

int main(void) {
    gs_test_begin(60);
    int procs[] = {2, 4};
    for (int k = 0; k < 2; k++) {
        gs_set_maxprocs(procs[k]);
        for (int round = 0; round < 400; round++) {
            for (int i = 0; i < 3; i++) CHECK_ID(gs_spawn(yielder, (void *)(long)(round % 50)));
            CHECK_OK(gs_run());
            for (int i = 0; i < 1000; i++) CHECK_ID(gs_spawn(empty, NULL)); /* workers busy */
            CHECK_OK(gs_run());
            gs_stats st;
            CHECK_OK(gs_get_stats(&st));
            CHECK_EQ(st.goroutines_live, 0);
        }
    }
    printf("800 rounds of gs_run racing busy workers for a P\n");
    return 0;
}
