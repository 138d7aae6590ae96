/*
 * An echo server with a goroutine per connection, and its clients, in one process (issue #13).
 *
 * The server listens on 127.0.0.1 (a free port); an acceptor goroutine spawns one goroutine per
 * connection, which echoes until the peer closes. 100 client goroutines each send 100 messages
 * and check every byte that comes back. Every call that would block (gs_accept, gs_connect,
 * gs_read, gs_write) parks only its goroutine: the netpoller wakes it when the socket is ready.
 * Stops by itself and prints the round trips per second.
 *
 *   cc -Iinclude examples/echo_server.c -Ltarget/release -lgostack -Wl,-rpath,$PWD/target/release
 */
#include "gostack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 100
#define MESSAGES 100

static int listener;
static struct sockaddr_in server_addr;
static int wrong;

static void fail(const char *what) {
    fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = gs_read(fd, buf, sizeof buf)) > 0)
        if (gs_write(fd, buf, (size_t)n) < 0) break; /* writes all of it, or fails */
    gs_fd_close(fd);
}

static void acceptor(void *arg) {
    (void)arg;
    for (int i = 0; i < CLIENTS; i++) {
        int fd = gs_accept(listener, NULL, NULL); /* non-blocking, close-on-exec */
        if (fd < 0) fail("accept");
        gs_spawn(serve, (void *)(intptr_t)fd);
    }
    gs_fd_close(listener);
}

static void client(void *arg) {
    int id = (int)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || gs_connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0) fail("connect");
    for (int i = 0; i < MESSAGES; i++) {
        char msg[64], back[64];
        snprintf(msg, sizeof msg, "client %d, message %d", id, i);
        size_t len = strlen(msg), got = 0;
        if (gs_write(fd, msg, len) < 0) fail("write");
        while (got < len) {
            ssize_t n = gs_read(fd, back + got, len - got);
            if (n <= 0) fail("read");
            got += (size_t)n;
        }
        if (memcmp(msg, back, len) != 0) wrong++;
    }
    gs_fd_close(fd);
}

int main(void) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof server_addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 ||
        getsockname(listener, (struct sockaddr *)&server_addr, &len) != 0 || listen(listener, 256) != 0)
        fail("listen");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gs_spawn(acceptor, NULL);
    for (int i = 0; i < CLIENTS; i++) gs_spawn(client, (void *)(intptr_t)i);
    int rc = gs_run(); /* returns when every goroutine has ended */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("echo: %d connections x %d messages, %d wrong, %.0f round trips/s (gs_run: %s)\n", CLIENTS, MESSAGES,
           wrong, CLIENTS * MESSAGES / dt, gs_strerror(rc));
    return rc == GS_OK && wrong == 0 ? 0 : 1;
}
