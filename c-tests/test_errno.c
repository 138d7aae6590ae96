/* Issue 20 item 9: every goroutine has its own errno (a goroutine's ENOENT stayed ENOENT across a
 * gs_yield only if nobody else ran; it became the other goroutine's EBADF), and gs_* calls leave
 * errno as they found it, also on success (they set ETIMEDOUT from the runtime's own timed
 * waits). At P=1, 2, 4. Pinned goroutines only: C compilers cache errno's address
 * (__errno_location() is const) across calls, so a migratable goroutine resumed on another thread
 * reads the old thread's slot whatever the runtime restores (README, "What not to do"). */
#include "gs_test.h"

#include <fcntl.h>

enum { N = 8, ROUNDS = 2000 };

typedef struct {
    int want;
    gs_chan *req, *rsp;
} job;

/* Echoes every request back (and sets its own errno meanwhile); -1 ends it. */
static void echo(void *arg) {
    job *j = arg;
    for (;;) {
        int v;
        CHECK_OK(gs_chan_recv(j->req, &v));
        errno = 999;
        if (v < 0) return;
        CHECK_OK(gs_chan_send(j->rsp, &v));
        CHECK_EQ(errno, 999);
    }
}

static void make_errno(int want) {
    errno = 0;
    if (want == ENOENT) {
        CHECK(open("/nonexistent/gostack-errno-test", O_RDONLY) < 0);
    } else if (want == EBADF) {
        CHECK(close(-1) < 0);
    } else {
        errno = want;
    }
    CHECK_EQ(errno, want);
}

static void worker(void *arg) {
    job *j = arg;
    int want = j->want;
    CHECK_ID(gs_spawn(echo, j));
    for (int r = 0; r < ROUNDS; r++) {
        make_errno(want);
        CHECK_OK(gs_yield());
        CHECK_EQ(errno, want);
        int v = want;
        if (r % 3 == 0) {
            /* park and be woken by another goroutine (the echo) */
            CHECK_OK(gs_chan_send(j->req, &v));
            CHECK_EQ(errno, want);
            CHECK_OK(gs_chan_recv(j->rsp, &v));
            CHECK_EQ(errno, want);
            CHECK_EQ(v, want);
        }
        if (r % 200 == 0) {
            CHECK_OK(gs_sleep(100 * 1000)); /* the M may sleep in a timed futex wait meanwhile */
            CHECK_EQ(errno, want);
        }
    }
    int stop = -1;
    CHECK_OK(gs_chan_send(j->req, &stop));
    CHECK_EQ(errno, want);
}

static gs_chan *late;

static void *late_sender(void *arg) {
    (void)arg;
    usleep(20 * 1000);
    int v = 5;
    CHECK_OK(gs_chan_send(late, &v));
    return NULL;
}

int main(void) {
    gs_test_begin(60);
    static job jobs[N];
    static const int codes[N] = {ENOENT, EBADF, 1001, 1002, ENOENT, EBADF, 1003, 1004};
    for (int i = 0; i < N; i++) {
        jobs[i].want = codes[i];
        jobs[i].req = gs_chan_new(sizeof(int), 0);
        jobs[i].rsp = gs_chan_new(sizeof(int), 0);
        CHECK(jobs[i].req != NULL && jobs[i].rsp != NULL);
        CHECK_ID(gs_spawn(worker, &jobs[i]));
    }
    errno = 4242;
    CHECK_OK(gs_run());
    CHECK_EQ(errno, 4242);

    /* Outside goroutines: blocking calls that wait with a timeout, then succeed. */
    late = gs_chan_new(sizeof(int), 0);
    CHECK(late != NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, late_sender, NULL) == 0);
    int v = 0;
    errno = 4343;
    CHECK_OK(gs_chan_recv_timeout(late, &v, 5LL * 1000 * 1000 * 1000));
    CHECK_EQ(v, 5);
    CHECK_EQ(errno, 4343);
    CHECK(pthread_join(t, NULL) == 0);
    errno = 4444;
    CHECK_OK(gs_sleep(1000 * 1000));
    CHECK_EQ(errno, 4444);
    /* Failures do not set it either (errors are return codes). */
    CHECK_RC(gs_chan_recv_timeout(late, &v, 1000 * 1000), GS_ETIMEDOUT);
    CHECK_EQ(errno, 4444);
    CHECK_RC(gs_dump(1 << 20), GS_EINVAL);
    CHECK_EQ(errno, 4444);
    CHECK_OK(gs_chan_free(late));
    for (int i = 0; i < N; i++) {
        CHECK_OK(gs_chan_free(jobs[i].req));
        CHECK_OK(gs_chan_free(jobs[i].rsp));
    }
    printf("errno: %d goroutines x %d rounds kept their own errno\n", N, ROUNDS);
    return 0;
}
