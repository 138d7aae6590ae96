/*
 * Issue #13: gs_fd_wait and the POSIX-style calls at their edges. Timeouts (an idle pipe, 0,
 * INT64_MAX), bad input (fd -1, unknown event bits, a closed fd, a huge fd), many waiters on
 * one fd, IN and OUT waiters on one fd, the same calls from a plain thread (they block it with
 * ppoll), gs_dump's [IO wait, fd N], and gs_run returning while goroutines wait on fds that a
 * thread which never called gostack makes ready later (no false deadlock).
 */
#include "gs_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int p[2];

/* ---- timeouts ------------------------------------------------------------------------------- */

static void timeouts(void *arg) {
    (void)arg;
    int64_t t0 = now_ns();
    CHECK_RC(gs_fd_wait(p[0], GS_POLL_IN, 20 * 1000 * 1000), GS_ETIMEDOUT);
    CHECK(now_ns() - t0 >= 20 * 1000 * 1000);
    t0 = now_ns();
    CHECK_RC(gs_fd_wait(p[0], GS_POLL_IN, 0), GS_ETIMEDOUT); /* 0: only looks */
    CHECK(now_ns() - t0 < 1000 * 1000 * 1000); /* did not wait (loose: a loaded machine) */
    CHECK_OK(gs_fd_wait(p[1], GS_POLL_OUT, 0)); /* an empty pipe is writable */
    CHECK_OK(gs_fd_wait(p[1], GS_POLL_OUT | GS_POLL_IN, -1));
}

static void late_writer(void *arg) {
    (void)arg;
    CHECK_OK(gs_sleep(10 * 1000 * 1000));
    CHECK_EQ(gs_write(p[1], "x", 1), 1);
}

static void wait_forever(void *arg) {
    (void)arg;
    CHECK_OK(gs_fd_wait(p[0], GS_POLL_IN, INT64_MAX)); /* "for ever": woken by the write */
    char c;
    CHECK_EQ(gs_read(p[0], &c, 1), 1);
    CHECK_EQ(c, 'x');
    CHECK_RC(gs_fd_wait(p[0], GS_POLL_IN, 0), GS_ETIMEDOUT); /* drained */
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void bad_input(void *arg) {
    (void)arg;
    char c = 0;
    int closed[2];
    CHECK(pipe(closed) == 0);
    close(closed[0]);
    close(closed[1]);
    CHECK_RC(gs_fd_wait(-1, GS_POLL_IN, 0), GS_EINVAL);
    CHECK_RC(gs_fd_wait(p[0], 0, 0), GS_EINVAL);
    CHECK_RC(gs_fd_wait(p[0], 4, 0), GS_EINVAL);
    CHECK_RC(gs_fd_wait(p[0], GS_POLL_IN | 0x100, -1), GS_EINVAL);
    CHECK_RC(gs_fd_wait(closed[0], GS_POLL_IN, -1), GS_EINVAL);
    CHECK_RC(gs_fd_wait(1 << 30, GS_POLL_IN, -1), GS_EINVAL);
    CHECK_RC(gs_fd_wait(INT32_MAX, GS_POLL_OUT, 0), GS_EINVAL);
    errno = 0;
    CHECK_EQ(gs_read(-1, &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    errno = 0;
    CHECK_EQ(gs_read(closed[0], &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    errno = 0;
    CHECK_EQ(gs_write(1 << 30, &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    errno = 0;
    CHECK_EQ(gs_accept(p[0], NULL, NULL), -1); /* not a socket */
    CHECK_EQ(errno, ENOTSOCK);
    errno = 0;
    CHECK_EQ(gs_connect(-1, NULL, 0), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_RC(gs_fd_close(-1), GS_EINVAL);
    CHECK_RC(gs_fd_close(closed[0]), GS_EINVAL);
    CHECK_RC(gs_blocking(NULL, NULL), GS_EINVAL);
    /* Success leaves errno alone. */
    errno = 4242;
    CHECK_EQ(gs_write(p[1], "y", 1), 1);
    CHECK_EQ(gs_read(p[0], &c, 1), 1);
    CHECK_EQ(errno, 4242);
    /* A regular file is always ready. */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK_OK(gs_fd_wait(fileno(f), GS_POLL_IN | GS_POLL_OUT, -1));
    CHECK_EQ(gs_write(fileno(f), "abc", 3), 3);
    fclose(f);
}

/* ---- many waiters, IN and OUT on one fd ------------------------------------------------------ */

#define MANY 50
static int many_woken;
static int sp[2]; /* a socket pair: both directions on one fd */

static void many_waiter(void *arg) {
    (void)arg;
    CHECK_OK(gs_fd_wait(p[0], GS_POLL_IN, 5LL * 1000 * 1000 * 1000));
    __atomic_add_fetch(&many_woken, 1, __ATOMIC_SEQ_CST);
}

static void many_writer(void *arg) {
    (void)arg;
    CHECK_OK(gs_sleep(5 * 1000 * 1000));
    CHECK_EQ(many_woken, 0);
    CHECK_EQ(gs_write(p[1], "z", 1), 1); /* one byte wakes all of them (level-triggered) */
}

static int in_done, out_done;

static void in_waiter(void *arg) {
    (void)arg;
    char buf[16];
    CHECK_EQ(gs_read(sp[0], buf, 5), 5); /* parks until the peer writes */
    CHECK(memcmp(buf, "hello", 5) == 0);
    in_done = 1;
}

static void out_waiter(void *arg) {
    (void)arg;
    /* Fill sp[0]'s send buffer, then one more write parks on OUT until the peer drains it. */
    static char chunk[65536];
    for (;;) {
        ssize_t r = send(sp[0], chunk, sizeof chunk, MSG_DONTWAIT);
        if (r < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
    }
    CHECK_EQ(gs_write(sp[0], chunk, sizeof chunk), (ssize_t)sizeof chunk);
    out_done = 1;
}

static void peer(void *arg) {
    (void)arg;
    static char buf[1 << 16];
    CHECK_OK(gs_sleep(5 * 1000 * 1000));
    CHECK_EQ(in_done + out_done, 0); /* both parked on the same fd */
    CHECK_EQ(gs_write(sp[1], "hello", 5), 5);
    for (int i = 0; i < 1000 && !in_done; i++) CHECK_OK(gs_sleep(1000 * 1000));
    CHECK_EQ(in_done, 1);
    CHECK_EQ(out_done, 0); /* the writer still waits: nobody drained */
    while (!out_done) { /* drain until the writer got its chunk out */
        ssize_t r = recv(sp[1], buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0) {
            CHECK(errno == EAGAIN);
            CHECK_OK(gs_sleep(1000 * 1000));
        }
    }
}

/* ---- gs_dump -------------------------------------------------------------------------------- */

static int dump_pipe[2];

static void io_sleeper(void *arg) {
    (void)arg;
    char c;
    CHECK_EQ(gs_read(dump_pipe[0], &c, 1), 1);
}

static void dumper(void *arg) {
    (void)arg;
    char path[] = "/tmp/gs_io_dumpXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    char buf[8192] = {0};
    char want[64];
    snprintf(want, sizeof want, "[IO wait, fd %d]", dump_pipe[0]);
    /* With two Ps the sleeper may not have parked yet: look again for up to a second. */
    for (int tries = 0; tries < 1000; tries++) {
        CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
        CHECK_OK(gs_dump(fd));
        memset(buf, 0, sizeof buf);
        CHECK(pread(fd, buf, sizeof buf - 1, 0) > 0);
        if (strstr(buf, want)) break;
        CHECK_OK(gs_sleep(1000 * 1000));
    }
    if (!strstr(buf, want)) gs_test_fail(__FILE__, __LINE__, "no %s in the dump:\n%s", want, buf);
    close(fd);
    CHECK_EQ(gs_write(dump_pipe[1], "q", 1), 1);
}

/* ---- a plain thread ------------------------------------------------------------------------- */

static void *plain_thread(void *arg) {
    (void)arg;
    int q[2];
    char c;
    CHECK(pipe(q) == 0);
    CHECK_RC(gs_fd_wait(q[0], GS_POLL_IN, 10 * 1000 * 1000), GS_ETIMEDOUT); /* blocks this thread */
    CHECK_OK(gs_fd_wait(q[1], GS_POLL_OUT, -1));
    CHECK(fcntl(q[0], F_SETFL, O_NONBLOCK) == 0);
    CHECK_EQ(gs_write(q[1], "t", 1), 1);
    CHECK_EQ(gs_read(q[0], &c, 1), 1); /* non-blocking fd: read, or ppoll and read */
    CHECK_EQ(c, 't');
    errno = 0;
    CHECK_EQ(gs_read(-1, &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    close(q[0]);
    close(q[1]);
    return NULL;
}

/* ---- no false deadlock ---------------------------------------------------------------------- */

static int late[2];
static int late_got;

static void late_reader(void *arg) {
    (void)arg;
    char c;
    CHECK_EQ(gs_read(late[0], &c, 1), 1); /* nothing else can wake it but the fd */
    __atomic_add_fetch(&late_got, 1, __ATOMIC_SEQ_CST);
}

static void *silent_writer(void *arg) {
    (void)arg;
    struct timespec ts = {0, 200 * 1000 * 1000}; /* past the 50 ms deadlock grace */
    nanosleep(&ts, NULL);
    CHECK(write(late[1], "ab", 2) == 2); /* never calls gostack: not a registered thread */
    return NULL;
}

int main(void) {
    gs_test_begin(60);
    CHECK(pipe(p) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
    CHECK(pipe(dump_pipe) == 0);
    CHECK(pipe(late) == 0);

    CHECK_ID(gs_spawn(timeouts, NULL));
    CHECK_OK(gs_run());
    CHECK_ID(gs_spawn(wait_forever, NULL));
    CHECK_ID(gs_spawn(late_writer, NULL));
    CHECK_OK(gs_run());
    CHECK_ID(gs_spawn(bad_input, NULL));
    CHECK_OK(gs_run());
    for (int i = 0; i < MANY; i++) CHECK_ID(gs_spawn(many_waiter, NULL));
    CHECK_ID(gs_spawn(many_writer, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(many_woken, MANY);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_ID(gs_spawn(in_waiter, NULL));
    CHECK_ID(gs_spawn(out_waiter, NULL));
    CHECK_ID(gs_spawn(peer, NULL));
    CHECK_OK(gs_run());
    CHECK_ID(gs_spawn(io_sleeper, NULL));
    CHECK_ID(gs_spawn(dumper, NULL));
    CHECK_OK(gs_run());

    pthread_t t;
    CHECK(pthread_create(&t, NULL, plain_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);

    CHECK_ID(gs_spawn(late_reader, NULL));
    CHECK_ID(gs_spawn(late_reader, NULL));
    CHECK(pthread_create(&t, NULL, silent_writer, NULL) == 0);
    CHECK_OK(gs_run()); /* not GS_EDEADLOCK: they wait on an fd */
    CHECK_EQ(late_got, 2);
    CHECK(pthread_join(t, NULL) == 0);
    printf("io wait: timeouts, bad input, %d waiters on one fd, IN+OUT on one fd, dump, plain thread, no false deadlock\n", MANY);
    return 0;
}
