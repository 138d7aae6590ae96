/* Issue 20 item 6: fork() after the runtime ran with several Ps. The child's gs_run returned
 * never (it waited for worker threads that do not exist in a child). Now the child gets a runtime
 * reset by the library's pthread_atfork handler: the parent's goroutines are dropped, except the
 * one that called fork (it runs on in the child), workers start afresh on demand.
 * 1. fork from main (outside goroutines) while parent goroutines are parked: the child runs new
 *    goroutines at P=4 and gs_run returns; the dropped ones are not in gs_dump and waking one
 *    through its channel is ignored.
 * 2. fork inside a goroutine: in the child that goroutine goes on (yields, spawns, channels),
 *    and returning from it ends the child's scheduler (the process exits 0). */
#include "gs_test.h"

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static gs_chan *parked_on;
static volatile int in_child;

static void parked(void *arg) {
    (void)arg;
    int v;
    gs_chan_recv(parked_on, &v); /* woken in the parent at the end; dropped in the child */
}

static void adder(void *arg) {
    int *sum = arg;
    for (int i = 0; i < 100; i++) {
        __atomic_add_fetch(sum, 1, __ATOMIC_RELAXED);
        CHECK_OK(gs_yield());
    }
}

static void ping(void *arg) {
    gs_chan *c = arg;
    int v = 0;
    CHECK_OK(gs_chan_recv(c, &v));
    v++;
    CHECK_OK(gs_chan_send(c, &v));
}

static int wait_child(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) CHECK(errno == EINTR);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "child %d: wait status %#x (signal %d, exit %d)\n", (int)pid, (unsigned)st,
                WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return st;
}

static void fork_from_main(void) {
    usleep(20 * 1000); /* the parent's workers are asleep (see the README on fork) */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        int sum = 0;
        int64_t t0 = now_ms();
        CHECK_EQ(gs_maxprocs(), 4);
        for (int i = 0; i < 8; i++) CHECK_ID(gs_spawn(adder, &sum));
        CHECK_OK(gs_run());
        CHECK_EQ(sum, 800);
        gs_stats st;
        CHECK_OK(gs_get_stats(&st));
        CHECK_EQ(st.goroutines_live, 0);
        /* Waking a dropped goroutine: ignored. */
        int v = 1;
        CHECK_OK(gs_chan_try_send(parked_on, &v));
        CHECK_OK(gs_run());
        /* gs_dump lists none of the parent's goroutines. */
        char path[] = "/tmp/gostack-fork-dump-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        unlink(path);
        CHECK_OK(gs_dump(fd));
        CHECK_EQ(lseek(fd, 0, SEEK_END), 0);
        close(fd);
        fprintf(stderr, "child: fresh runtime ran 8 goroutines at P=4 in %lld ms\n", (long long)(now_ms() - t0));
        _exit(0);
    }
    int st = wait_child(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void forker(void *arg) {
    (void)arg;
    int64_t me = gs_self();
    /* Fork while the other threads are quiescent: a thread inside a lock's wait-table update at
     * the instant of the fork leaves that table locked in the child (README on fork). */
    CHECK_OK(gs_sleep(20 * 1000 * 1000));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        in_child = 1;
        alarm(20);
        CHECK_EQ(gs_self(), me);
        CHECK_OK(gs_yield());
        gs_chan *c = gs_chan_new(sizeof(int), 0);
        CHECK(c != NULL);
        CHECK_ID(gs_spawn(ping, c));
        int v = 41;
        CHECK_OK(gs_chan_send(c, &v));
        CHECK_OK(gs_chan_recv(c, &v));
        CHECK_EQ(v, 42);
        CHECK_OK(gs_chan_free(c));
        return; /* the child's scheduler ends with its goroutines: gs_run returns, or exit(0) */
    }
    int st = wait_child(pid); /* a raw blocking call in a goroutine: fine for a test */
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    gs_test_begin(60);
    gs_set_maxprocs(4);
    parked_on = gs_chan_new(sizeof(int), 0);
    CHECK(parked_on != NULL);
    /* Start workers, leave goroutines parked. */
    gs_chan *c = gs_chan_new(sizeof(int), 0);
    for (int i = 0; i < 4; i++) CHECK_ID(gs_spawn(parked, NULL));
    int sum = 0;
    for (int i = 0; i < 16; i++) CHECK_ID(gs_spawn(adder, &sum));
    CHECK_RC(gs_run(), GS_EDEADLOCK); /* only the parked ones are left */
    CHECK_EQ(sum, 1600);

    fork_from_main();

    for (int i = 0; i < 8; i++) CHECK_ID(gs_spawn(adder, &sum));
    CHECK_RC(gs_run(), GS_EDEADLOCK);
    CHECK_EQ(sum, 2400);
    CHECK_ID(gs_spawn(forker, NULL));
    gs_run(); /* GS_EDEADLOCK in the parent (the parked ones); in the child: returns once forker did */
    if (in_child) _exit(0);

    /* The parent's runtime is unaffected: wake the parked goroutines. */
    for (int i = 0; i < 4; i++) {
        int v = i;
        CHECK_OK(gs_chan_send(parked_on, &v));
    }
    CHECK_OK(gs_run());
    CHECK_OK(gs_chan_free(parked_on));
    CHECK_OK(gs_chan_free(c));
    printf("fork: children got a working runtime (from main and from a goroutine)\n");
    return 0;
}
