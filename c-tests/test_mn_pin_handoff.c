/* Pinning with one P shared by two threads in gs_run: the P passes between them (hand-off after a
 * 1 ms slice), and pinned goroutines queued globally must still run only on their own thread.
 * Regressions: find_runnable took them from the global queue on whichever thread held the P; and
 * the thread that ran the last goroutine woke the other before it released the P, so the other
 * saw a P running, took it for a goroutine, and slept for good (a hang under qemu, ~1 run in
 * 15; several rounds here to give that window more chances). */
#include "gs_test.h"
#include <stdatomic.h>
#include <sys/syscall.h>

static atomic_int moved, done;

static void worker(void *arg) {
    (void)arg;
    pid_t t0 = (pid_t)syscall(SYS_gettid);
    for (int k = 0; k < 3000; k++) {
        CHECK_OK(gs_yield());
        if ((pid_t)syscall(SYS_gettid) != t0) atomic_fetch_add(&moved, 1);
    }
    atomic_fetch_add(&done, 1);
}

static void *second_runner(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++) CHECK_ID(gs_spawn(worker, NULL));
    CHECK_OK(gs_run());
    return NULL;
}

enum { ROUNDS = 5 };

int main(void) {
    gs_test_begin(60);
    gs_set_maxprocs(1);
    for (int r = 1; r <= ROUNDS; r++) {
        for (int i = 0; i < 20; i++) CHECK_ID(gs_spawn(worker, NULL));
        pthread_t t;
        CHECK(pthread_create(&t, NULL, second_runner, NULL) == 0);
        CHECK_OK(gs_run());
        CHECK(pthread_join(t, NULL) == 0);
        CHECK_OK(gs_run());
        CHECK_EQ(atomic_load(&done), 40 * r);
    }
    CHECK_EQ(atomic_load(&moved), 0);
    printf("%d rounds: 40 pinned goroutines on one P shared by two gs_run threads never changed thread\n", ROUNDS);
    return 0;
}
