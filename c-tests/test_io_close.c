/*
 * Issue #13: closing fds that goroutines wait on. gs_fd_close wakes a parked reader (-1, EBADF)
 * and a gs_fd_wait waiter (GS_ECLOSED); a plain close() behind the poller's back does not crash
 * or hang anything: its waiter sees its timeout, and the fd number, reused by a new pipe, works
 * (the poller re-checks its registration at every park). A fork child gets a poller of its own.
 */
#include "gs_test.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>

static int p[2];
static atomic_int got_ebadf, got_closed;
/* At several Ps the closers may run before the waiters have parked: they wait until gs_dump
 * shows them parked (their ids are set before the closer is spawned). */
static int64_t reader_id, waiter_id, plain_waiter_id;

static void wait_io_parked(int64_t id, int fd) {
    char reason[48];
    snprintf(reason, sizeof reason, "IO wait, fd %d", fd);
    gs_test_wait_parked(id, reason);
}

static void reader(void *arg) {
    (void)arg;
    char c;
    errno = 0;
    CHECK_EQ(gs_read(p[0], &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    atomic_store(&got_ebadf, 1);
}

static void waiter(void *arg) {
    (void)arg;
    CHECK_RC(gs_fd_wait(p[0], GS_POLL_IN, -1), GS_ECLOSED);
    atomic_store(&got_closed, 1);
}

static void closer(void *arg) {
    (void)arg;
    wait_io_parked(reader_id, p[0]);
    wait_io_parked(waiter_id, p[0]);
    CHECK_EQ(atomic_load(&got_ebadf) + atomic_load(&got_closed), 0);
    CHECK_OK(gs_fd_close(p[0]));
    CHECK_RC(gs_fd_close(p[0]), GS_EINVAL); /* closed now */
}

/* ---- plain close() ---------------------------------------------------------------------------- */

static int q[2];
static int plain_timed_out;

static void plain_waiter(void *arg) {
    (void)arg;
    /* Its fd is closed behind the poller's back: nothing wakes it but its timeout. */
    int rc = gs_fd_wait(q[0], GS_POLL_IN, 100 * 1000 * 1000);
    CHECK(rc == GS_ETIMEDOUT || rc == GS_ECLOSED);
    plain_timed_out = 1;
}

static void plain_closer(void *arg) {
    (void)arg;
    int old = q[0];
    wait_io_parked(plain_waiter_id, q[0]);
    close(q[0]);
    close(q[1]);
    /* The numbers come back for a new pipe; the poller must watch the new file. */
    CHECK(pipe(q) == 0);
    CHECK_EQ(q[0], old);
    CHECK_EQ(gs_write(q[1], "n", 1), 1);
    char c;
    CHECK_EQ(gs_read(q[0], &c, 1), 1);
    CHECK_EQ(gs_read(q[0], &c, 0), 0);
}

static void reuse_reader(void *arg) {
    (void)arg;
    char c;
    CHECK_EQ(gs_read(q[0], &c, 1), 1); /* parks on the new file under the old number */
    CHECK_EQ(c, 'r');
}

static void reuse_writer(void *arg) {
    (void)arg;
    CHECK_OK(gs_sleep(5 * 1000 * 1000));
    CHECK_EQ(gs_write(q[1], "r", 1), 1);
}

/* ---- fork ---------------------------------------------------------------------------------- */

static int f[2];

static void child_echo(void *arg) {
    (void)arg;
    char c;
    CHECK_EQ(gs_read(f[0], &c, 1), 1);
    CHECK_EQ(c, 'c');
}

static void child_writer(void *arg) {
    (void)arg;
    CHECK_OK(gs_sleep(5 * 1000 * 1000));
    CHECK_EQ(gs_write(f[1], "c", 1), 1);
}

/* Set in the fork child: it leaves with _exit (the parent's runtime threads do not exist there,
 * so LeakSanitizer's exit-time check would report their records as leaks; test_fork does the same). */
static volatile int in_child;

static void forker(void *arg) {
    (void)arg;
    int r[2];
    CHECK(pipe(r) == 0);
    /* The parent has used the poller (this goroutine's waits) before forking. */
    CHECK_RC(gs_fd_wait(r[0], GS_POLL_IN, 1000 * 1000), GS_ETIMEDOUT);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        in_child = 1;
        CHECK(pipe(f) == 0);
        CHECK_ID(gs_spawn(child_echo, NULL));
        CHECK_ID(gs_spawn(child_writer, NULL));
        int z[2];
        CHECK(pipe(z) == 0);
        CHECK_RC(gs_fd_wait(z[0], GS_POLL_IN, 1000 * 1000), GS_ETIMEDOUT); /* the child's poller */
        return; /* the child ends when this goroutine and the ones it spawned are done */
    }
    CHECK_EQ(gs_write(r[1], "p", 1), 1);
    CHECK_OK(gs_fd_wait(r[0], GS_POLL_IN, -1));
    int st;
    while (waitpid(pid, &st, 0) < 0) CHECK(errno == EINTR);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    gs_test_begin(60);
    CHECK(pipe(p) == 0);
    reader_id = CHECK_ID(gs_spawn(reader, NULL));
    waiter_id = CHECK_ID(gs_spawn(waiter, NULL));
    CHECK_ID(gs_spawn(closer, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(atomic_load(&got_ebadf), 1);
    CHECK_EQ(atomic_load(&got_closed), 1);
    close(p[1]);

    CHECK(pipe(q) == 0);
    plain_waiter_id = CHECK_ID(gs_spawn(plain_waiter, NULL));
    CHECK_ID(gs_spawn(plain_closer, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(plain_timed_out, 1);
    CHECK_ID(gs_spawn(reuse_reader, NULL));
    CHECK_ID(gs_spawn(reuse_writer, NULL));
    CHECK_OK(gs_run());

    CHECK_ID(gs_spawn(forker, NULL));
    CHECK_OK(gs_run());
    if (in_child) _exit(0);
    printf("io close: gs_fd_close wakes waiters, plain close and reuse, fork\n");
    return 0;
}
