/* M:N migration policy: after its first run a goroutine stays on its OS thread (errno and other
 * TLS addresses cached by the compiler stay valid); GS_SPAWN_MIGRATABLE ones may move. */
#include "gs_test.h"
#include <stdatomic.h>
#include <sys/syscall.h>

#define N 64
static atomic_int moved_pinned, moved_migratable, errno_bad;

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static void pinned(void *arg) {
    (void)arg;
    pid_t t0 = tid();
    int *e0 = &errno;
    for (int k = 0; k < 50; k++) {
        if (k % 3 == 0) CHECK_OK(gs_sleep(20000));
        else CHECK_OK(gs_yield());
        if (tid() != t0) atomic_fetch_add(&moved_pinned, 1);
        if (&errno != e0) atomic_fetch_add(&errno_bad, 1);
    }
}

static void migratable(void *arg) {
    (void)arg;
    pid_t t0 = tid();
    for (int k = 0; k < 50; k++) {
        if (k % 3 == 0) CHECK_OK(gs_sleep(20000));
        else CHECK_OK(gs_yield());
        if (tid() != t0) {
            atomic_fetch_add(&moved_migratable, 1);
            t0 = tid();
        }
    }
}

/* a goroutine keeps its thread even while another thread readies it (sleep timers fire on any M) */
int main(void) {
    gs_test_begin(100);
    gs_set_maxprocs(4);
    gs_attr mig;
    CHECK_OK(gs_attr_init(&mig));
    mig.flags = GS_SPAWN_MIGRATABLE;
    for (int i = 0; i < N; i++) {
        CHECK_ID(gs_spawn(pinned, NULL));
        CHECK_ID(gs_spawn_with(&mig, migratable, NULL));
    }
    CHECK_OK(gs_run());
    CHECK_EQ(atomic_load(&moved_pinned), 0);
    CHECK_EQ(atomic_load(&errno_bad), 0);
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    printf("pinned goroutines never moved; migratable ones moved %d times over %u threads\n",
           atomic_load(&moved_migratable), st.threads);
    return 0;
}
