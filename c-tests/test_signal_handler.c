/* Issue 20 item 10: gs_* calls from a signal handler return GS_ESTATE instead of switching stacks
 * under the interrupted code (before: gs_yield in a handler crashed with SIGSEGV in enter_m, hung,
 * or spawned goroutines that never ran). The handler is installed before the runtime starts, so
 * the runtime adds SA_ONSTACK to it (Go's setsigstack) and it runs on the thread's sigaltstack:
 * that is how the runtime tells. A profiling timer interrupts goroutines, the scheduler on g0 and
 * idle threads at random points; a synchronous pthread_kill interrupts a goroutine at a known one.
 * Run in a child process (a crash is the failure before the fix). */
#include "gs_test.h"

#include <stdatomic.h>
#include <sys/time.h>

static gs_chan *buffered;
/* At several Ps the process-wide profiling timer's signal lands on any thread, and two handlers
 * can run at once: the counts are atomic (lock-free, so safe in a handler), and a handler run
 * counts its own refusals before it adds them up. */
static atomic_int handled, refused, accepted, partly;

static void handler(int sig) {
    (void)sig;
    int saved = errno;
    int rc[4];
    rc[0] = gs_yield();
    rc[1] = (int)gs_spawn((gs_fn)abort, NULL);
    rc[2] = gs_chan_try_send(buffered, &(int){1});
    rc[3] = gs_sleep(1);
    int no = 0;
    for (int i = 0; i < 4; i++) no += rc[i] == GS_ESTATE;
    if (no != 4) atomic_fetch_add(&partly, 1);
    atomic_fetch_add(&refused, no);
    atomic_fetch_add(&accepted, 4 - no);
    atomic_fetch_add(&handled, 1);
    errno = saved;
}

static gs_chan *ping, *pong;

static void ponger(void *arg) {
    (void)arg;
    int v;
    while (gs_chan_recv(ping, &v) == GS_OK) CHECK_OK(gs_chan_send(pong, &v));
}

static void body(void *arg) {
    (void)arg;
    ping = gs_chan_new(sizeof(int), 0);
    pong = gs_chan_new(sizeof(int), 0);
    CHECK(ping != NULL && pong != NULL);
    CHECK_ID(gs_spawn(ponger, NULL));
    /* A known point: inside this goroutine. */
    for (int i = 0; i < 100; i++) CHECK(pthread_kill(pthread_self(), SIGPROF) == 0);
    CHECK_EQ(atomic_load(&handled), 100);
    /* Random points: a 1 ms profiling timer while goroutines switch as fast as they can. */
    struct itimerval it = {{0, 1000}, {0, 1000}};
    CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0);
    while (atomic_load(&handled) < 400) {
        for (int i = 0; i < 1000; i++) {
            int v = i;
            CHECK_OK(gs_chan_send(ping, &v));
            CHECK_OK(gs_chan_recv(pong, &v));
            CHECK_EQ(v, i);
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_PROF, &off, NULL) == 0);
    CHECK_OK(gs_chan_close(ping));
}

static void child(void *arg) {
    (void)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART; /* no SA_ONSTACK: the runtime adds it */
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGPROF, &sa, NULL) == 0);
    buffered = gs_chan_new(sizeof(int), 1000000);
    CHECK(buffered != NULL);
    CHECK_OK(gs_main(body, NULL));
    CHECK_OK(gs_run()); /* the ponger ends after the close */
    /* A signal still pending when the timer stopped can run a handler during these reads: each
     * run is checked on its own (partly: a run where a call was not refused). */
    int runs = atomic_load(&handled), no = atomic_load(&refused), yes = atomic_load(&accepted);
    printf("signal_handler: %d handler runs, %d calls refused with GS_ESTATE, %d accepted\n", runs, no, yes);
    CHECK_EQ(yes, 0);
    CHECK_EQ(atomic_load(&partly), 0);
    CHECK(runs >= 400 && no >= 4 * 400);
    CHECK_EQ(gs_chan_len(buffered), 0);
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    CHECK_EQ(st.goroutines_live, 0);
    _exit(0);
}

int main(void) {
    gs_test_begin(60);
    gs_test_child c;
    gs_test_child_run(child, NULL, 40, &c);
    gs_test_current_child = &c;
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    gs_test_current_child = NULL;
    free(c.err);
    return 0;
}
