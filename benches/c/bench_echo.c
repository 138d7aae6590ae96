/*
 * TCP echo over loopback (issue #13): CONNS client goroutines each make ROUNDS round trips of
 * 64 bytes with an echo server in the same process (a goroutine per connection), through
 * gs_accept/gs_connect/gs_read/gs_write. Prints round trips per second; with BENCH_RAW=1 also
 * "raw<TAB>echo<TAB>value" lines for benches/compare. P from GOSTACK_MAXPROCS.
 *
 *   bench_echo [CONNS=1000] [ROUNDS=200] [REPS=3]
 */
#define _GNU_SOURCE 1
#include <gostack.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static int conns = 1000, rounds = 200;
static int listen_fd;
static struct sockaddr_in addr;
static long failures;

static void die(const char *what) {
    fprintf(stderr, "bench_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[MSG * 4];
    for (;;) {
        ssize_t r = gs_read(fd, buf, sizeof buf);
        if (r <= 0) break;
        if (gs_write(fd, buf, (size_t)r) != r) break;
    }
    gs_fd_close(fd);
}

static void acceptor(void *arg) {
    (void)arg;
    for (int i = 0; i < conns; i++) {
        int fd = gs_accept(listen_fd, NULL, NULL);
        if (fd < 0) die("accept");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        gs_spawn(serve, (void *)(intptr_t)fd);
    }
}

static void client(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (gs_connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    char out[MSG], in[MSG];
    memset(out, 'e', sizeof out);
    for (int i = 0; i < rounds; i++) {
        if (gs_write(fd, out, MSG) != MSG) die("write");
        size_t got = 0;
        while (got < MSG) {
            ssize_t r = gs_read(fd, in + got, MSG - got);
            if (r <= 0) die("read");
            got += (size_t)r;
        }
        if (memcmp(in, out, MSG) != 0) failures++;
    }
    gs_fd_close(fd);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc > 1) conns = atoi(argv[1]);
    if (argc > 2) rounds = atoi(argv[2]);
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    int raw = getenv("BENCH_RAW") != NULL;
    for (int rep = 0; rep < reps; rep++) {
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
        socklen_t len = sizeof addr;
        getsockname(listen_fd, (struct sockaddr *)&addr, &len);
        if (listen(listen_fd, 4096) != 0) die("listen");
        gs_spawn(acceptor, NULL);
        for (int i = 0; i < conns; i++) gs_spawn(client, NULL);
        double t0 = now();
        if (gs_run() != GS_OK) die("gs_run");
        double dt = now() - t0;
        gs_fd_close(listen_fd);
        double rate = (double)conns * rounds / dt;
        if (raw) printf("raw\techo\t%.1f\n", rate);
        else printf("echo P=%d: %d connections x %d round trips of %d bytes: %.0f round trips/s (%.3f s)\n",
                    gs_maxprocs(), conns, rounds, MSG, rate, dt);
    }
    if (failures) {
        fprintf(stderr, "bench_echo: %ld wrong replies\n", failures);
        return 1;
    }
    return 0;
}
