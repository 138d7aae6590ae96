/*
 * Issue #13: an echo server and its clients in one process, every goroutine doing socket I/O
 * through gs_accept/gs_connect/gs_read/gs_write: 200 connections x 100 messages of 64 bytes,
 * every byte checked (each message carries its connection and sequence number). Run at P=1
 * (everything on the gs_run thread: the poller is the only thing that wakes anybody) and P=2.
 */
#include "gs_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define CONNS 200
#define MSGS 100
#define MSG 64

static int listen_fd;
static struct sockaddr_in server_addr;
static int64_t served, clients_done;
static int64_t bytes_echoed;

static void fill(unsigned char *buf, int conn, int seq) {
    for (int i = 0; i < MSG; i++) buf[i] = (unsigned char)(conn * 131 + seq * 7 + i);
}

/* Reads exactly n bytes (gs_read may return less). */
static void read_full(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = gs_read(fd, buf + got, n - got);
        if (r < 0) gs_test_fail(__FILE__, __LINE__, "gs_read: %s", strerror(errno));
        CHECK(r > 0);
        got += (size_t)r;
    }
}

static void handler(void *arg) {
    int fd = (int)(intptr_t)arg;
    unsigned char buf[256];
    for (;;) {
        ssize_t r = gs_read(fd, buf, sizeof buf);
        if (r < 0) gs_test_fail(__FILE__, __LINE__, "server gs_read: %s", strerror(errno));
        if (r == 0) break;
        CHECK_EQ(gs_write(fd, buf, (size_t)r), r);
        __atomic_add_fetch(&bytes_echoed, r, __ATOMIC_RELAXED);
    }
    CHECK_OK(gs_fd_close(fd));
    __atomic_add_fetch(&served, 1, __ATOMIC_RELAXED);
}

static void acceptor(void *arg) {
    (void)arg;
    for (int i = 0; i < CONNS; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = gs_accept(listen_fd, (struct sockaddr *)&peer, &len);
        if (fd < 0) gs_test_fail(__FILE__, __LINE__, "gs_accept: %s", strerror(errno));
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK_EQ(len, sizeof peer);
        CHECK_ID(gs_spawn(handler, (void *)(intptr_t)fd));
    }
    CHECK_OK(gs_fd_close(listen_fd));
}

static void client(void *arg) {
    int conn = (int)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* blocking: gs_connect makes it non-blocking */
    CHECK(fd >= 0);
    int one = 1;
    CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
    if (gs_connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0)
        gs_test_fail(__FILE__, __LINE__, "gs_connect: %s", strerror(errno));
    unsigned char out[MSG], in[MSG];
    for (int seq = 0; seq < MSGS; seq++) {
        fill(out, conn, seq);
        CHECK_EQ(gs_write(fd, out, MSG), MSG);
        read_full(fd, in, MSG);
        if (memcmp(in, out, MSG) != 0) gs_test_fail(__FILE__, __LINE__, "conn %d message %d: wrong bytes", conn, seq);
    }
    CHECK_OK(gs_fd_close(fd));
    __atomic_add_fetch(&clients_done, 1, __ATOMIC_RELAXED);
}

int main(void) {
    gs_test_begin(60);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listen_fd >= 0);
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(listen_fd, (struct sockaddr *)&server_addr, sizeof server_addr) == 0);
    socklen_t len = sizeof server_addr;
    CHECK(getsockname(listen_fd, (struct sockaddr *)&server_addr, &len) == 0);
    CHECK(listen(listen_fd, 1024) == 0);

    CHECK_ID(gs_spawn(acceptor, NULL));
    for (int i = 0; i < CONNS; i++) CHECK_ID(gs_spawn(client, (void *)(intptr_t)i));
    CHECK_OK(gs_run());
    CHECK_EQ(clients_done, CONNS);
    CHECK_EQ(served, CONNS);
    CHECK_EQ(bytes_echoed, (int64_t)CONNS * MSGS * MSG);
    printf("echo: %d connections x %d messages of %d bytes, every byte checked\n", CONNS, MSGS, MSG);
    return 0;
}
