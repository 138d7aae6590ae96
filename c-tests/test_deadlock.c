/* Deadlock detection: gs_run returns GS_EDEADLOCK when every goroutine is parked for good;
 * gs_main prints Go's message with a dump and exits 2; pending timers and live outside threads
 * that may still wake a goroutine are not deadlocks. */
#include "gs_test.h"

static gs_chan *never;

static void wait_forever(void *arg) {
    (void)arg;
    int v;
    gs_chan_recv(never, &v);
}

static void main_waits_forever(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(wait_forever, NULL));
    int v;
    gs_chan_recv(never, &v);
}

static void child_gs_main(void *arg) {
    (void)arg;
    never = gs_chan_new(sizeof(int), 0);
    gs_main(main_waits_forever, NULL);
    _exit(0); /* not reached: gs_main must exit(2) */
}

/* a sleeper will feed the channel: not a deadlock */
static gs_chan *ch;
static void late_sender(void *arg) {
    (void)arg;
    CHECK_OK(gs_sleep(30 * 1000000));
    int v = 7;
    CHECK_OK(gs_chan_send(ch, &v));
}
static void receiver(void *arg) {
    (void)arg;
    int v = 0;
    CHECK_OK(gs_chan_recv(ch, &v));
    CHECK_EQ(v, 7);
}

/* an outside thread that spawned a goroutine and will send later: not a deadlock while it lives */
static volatile int outside_spawned;
static void *outside(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(receiver, NULL));
    outside_spawned = 1;
    usleep(50 * 1000);
    int v = 7;
    CHECK_OK(gs_chan_send(ch, &v));
    return NULL;
}

static void run_case(int procs) {
    gs_set_maxprocs(procs);
    never = gs_chan_new(sizeof(int), 0);
    CHECK(never != NULL);
    CHECK_ID(gs_spawn(wait_forever, NULL));
    CHECK_ID(gs_spawn(wait_forever, NULL));
    CHECK_RC(gs_run(), GS_EDEADLOCK);
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    CHECK_EQ(st.goroutines_live, 2);
    /* wake them from outside (this thread is not a goroutine: the sends block it until taken) */
    int v = 1;
    CHECK_OK(gs_chan_close(never));
    (void)v;
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&st));
    CHECK_EQ(st.goroutines_live, 0);
    CHECK_OK(gs_chan_free(never));

    ch = gs_chan_new(sizeof(int), 0);
    CHECK_ID(gs_spawn(receiver, NULL));
    CHECK_ID(gs_spawn(late_sender, NULL));
    CHECK_OK(gs_run());

    pthread_t t;
    outside_spawned = 0;
    CHECK(pthread_create(&t, NULL, outside, NULL) == 0);
    /* Let it spawn (a fixed sleep was too short on a loaded machine: gs_run then returned at once
     * and the thread's send blocked for ever). */
    while (!outside_spawned) usleep(1000);
    CHECK_OK(gs_run());
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_OK(gs_run());
    CHECK_OK(gs_chan_free(ch));
}

int main(void) {
    gs_test_begin(100);
    /* fork first: a child forked after worker threads started inherits their state, not them */
    gs_test_child c;
    gs_test_child_run(child_gs_main, NULL, 30, &c);
    CHECK(WIFEXITED(c.status));
    CHECK_EQ(WEXITSTATUS(c.status), 2);
    CHECK(strstr(c.err, "fatal error: all goroutines are asleep - deadlock!") != NULL);
    CHECK(strstr(c.err, "[chan receive]") != NULL);
    free(c.err);
    run_case(1);
    run_case(2);
    printf("deadlocks detected on 1 and 2 Ps; gs_main exits 2 with Go's message\n");
    return 0;
}
