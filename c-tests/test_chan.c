/* Channels: unbuffered rendezvous (the value goes straight from sender to receiver), buffered
 * FIFO, try-variants, close semantics, recv_timeout, len/cap, freeing a busy channel, NULL
 * handles. Holds with any number of Ps: only Go's guarantees are assumed. */
#include "gs_test.h"
#include <stdatomic.h>

typedef struct { long a, b, c; } triple;

static gs_chan *unbuf, *done_ch;

static void rendezvous_sender(void *arg) {
    (void)arg;
    for (long i = 0; i < 100; i++) {
        triple t = {i, i * 2, i * 3};
        CHECK_OK(gs_chan_send(unbuf, &t));
    }
    CHECK_OK(gs_chan_close(unbuf));
}

static void rendezvous_receiver(void *arg) {
    (void)arg;
    long n = 0;
    for (;;) {
        triple t = {-1, -1, -1};
        int rc = gs_chan_recv(unbuf, &t);
        if (rc == GS_ECLOSED) {
            CHECK_EQ(t.a, -1); /* out not written */
            break;
        }
        CHECK_OK(rc);
        CHECK_EQ(t.a, n);
        CHECK_EQ(t.b, 2 * n);
        CHECK_EQ(t.c, 3 * n);
        n++;
    }
    CHECK_EQ(n, 100);
    CHECK_RC(gs_chan_recv(unbuf, NULL), GS_ECLOSED); /* again, at once */
    CHECK_OK(gs_chan_send(done_ch, NULL));
}

/* Blocked senders on a full buffered channel wake with GS_ECLOSED when it closes. */
static gs_chan *full;
static void blocked_sender(void *arg) {
    long v = (long)arg;
    CHECK_RC(gs_chan_send(full, &v), GS_ECLOSED);
    CHECK_OK(gs_chan_send(done_ch, NULL));
}

static gs_chan *empty;
static void blocked_receiver(void *arg) {
    (void)arg;
    long v = 77;
    CHECK_RC(gs_chan_recv(empty, &v), GS_ECLOSED);
    CHECK_EQ(v, 77);
    CHECK_OK(gs_chan_send(done_ch, NULL));
}

static void closer(void *arg) {
    (void)arg;
    /* Wait until both blocked goroutines are queued (len stays at cap while the sender waits). */
    for (int i = 0; i < 100; i++) gs_yield();
    CHECK_OK(gs_chan_close(full));
    CHECK_OK(gs_chan_close(empty));
    CHECK_RC(gs_chan_close(empty), GS_ECLOSED);
}

/* Buffered FIFO with the "receiver moves a blocked sender's value into the buffer" path. */
static gs_chan *fifo;
static void fifo_sender(void *arg) {
    (void)arg;
    for (long i = 0; i < 1000; i++) CHECK_OK(gs_chan_send(fifo, &i));
    CHECK_OK(gs_chan_close(fifo));
}
static void fifo_receiver(void *arg) {
    (void)arg;
    long want = 0, v;
    int rc;
    while ((rc = gs_chan_recv(fifo, &v)) == GS_OK) {
        CHECK_EQ(v, want);
        want++;
        if (want % 7 == 0) gs_yield(); /* let the sender fill the buffer and block */
    }
    CHECK_RC(rc, GS_ECLOSED);
    CHECK_EQ(want, 1000);
    CHECK_OK(gs_chan_send(done_ch, NULL));
}

static gs_chan *slow, *slow_gate;
static void late_sender(void *arg) {
    (void)arg;
    long v = 42;
    /* Not before the receiver's two timeouts (at several Ps it can start first). */
    CHECK_RC(gs_chan_recv(slow_gate, NULL), GS_ECLOSED);
    CHECK_OK(gs_sleep(20 * 1000 * 1000));
    CHECK_OK(gs_chan_send(slow, &v));
}
static void timeout_receiver(void *arg) {
    (void)arg;
    long v = -1;
    int64_t t0 = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_RC(gs_chan_recv_timeout(slow, &v, 2 * 1000 * 1000), GS_ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    t0 = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
    CHECK(t0 >= 2 * 1000 * 1000);
    CHECK_EQ(v, -1);
    CHECK_RC(gs_chan_recv_timeout(slow, &v, 0), GS_ETIMEDOUT);
    CHECK_OK(gs_chan_close(slow_gate));
    CHECK_OK(gs_chan_recv_timeout(slow, &v, 10LL * 1000 * 1000 * 1000));
    CHECK_EQ(v, 42);
    CHECK_OK(gs_chan_send(done_ch, NULL));
}

/* gs_chan_free on a channel with a blocked receiver: GS_EBUSY, then fine once it left. */
static gs_chan *busy;
static atomic_llong busy_receiver_id;
static void busy_receiver(void *arg) {
    (void)arg;
    int v = 0;
    atomic_store(&busy_receiver_id, gs_self());
    CHECK_OK(gs_chan_recv(busy, &v));
    CHECK_EQ(v, 5);
}
static void busy_freer(void *arg) {
    (void)arg;
    int v = 5;
    /* With one P the receiver blocked before we ran; at several Ps wait until it has. */
    while (atomic_load(&busy_receiver_id) == 0) CHECK_OK(gs_yield());
    gs_test_wait_parked(atomic_load(&busy_receiver_id), "chan receive");
    CHECK_RC(gs_chan_free(busy), GS_EBUSY);
    CHECK_RC(gs_chan_free(busy), GS_EBUSY);
    CHECK_OK(gs_chan_send(busy, &v));
}

int main(void) {
    gs_test_begin(60);
    done_ch = gs_chan_new(0, 16);
    CHECK(done_ch != NULL);

    /* try-variants, len, cap on a buffered channel, outside any goroutine. */
    gs_chan *b = gs_chan_new(sizeof(int), 2);
    CHECK(b != NULL);
    int x = 1, y = 0;
    CHECK_EQ(gs_chan_cap(b), 2);
    CHECK_EQ(gs_chan_len(b), 0);
    CHECK_RC(gs_chan_try_recv(b, &y), GS_EAGAIN);
    CHECK_OK(gs_chan_try_send(b, &x));
    x = 2;
    CHECK_OK(gs_chan_try_send(b, &x));
    CHECK_RC(gs_chan_try_send(b, &x), GS_EAGAIN);
    CHECK_EQ(gs_chan_len(b), 2);
    CHECK_OK(gs_chan_close(b));
    CHECK_RC(gs_chan_try_send(b, &x), GS_ECLOSED);
    CHECK_RC(gs_chan_send(b, &x), GS_ECLOSED);
    CHECK_OK(gs_chan_try_recv(b, &y));
    CHECK_EQ(y, 1);
    CHECK_OK(gs_chan_recv(b, &y)); /* buffered values survive close */
    CHECK_EQ(y, 2);
    y = 9;
    CHECK_RC(gs_chan_recv(b, &y), GS_ECLOSED);
    CHECK_RC(gs_chan_try_recv(b, &y), GS_ECLOSED);
    CHECK_EQ(y, 9);
    CHECK_OK(gs_chan_free(b));

    /* Unbuffered: try_send with no receiver would block. */
    unbuf = gs_chan_new(sizeof(triple), 0);
    CHECK(unbuf != NULL);
    CHECK_EQ(gs_chan_cap(unbuf), 0);
    triple t = {1, 2, 3};
    CHECK_RC(gs_chan_try_send(unbuf, &t), GS_EAGAIN);
    CHECK_RC(gs_chan_try_recv(unbuf, &t), GS_EAGAIN);

    /* Bad input. */
    CHECK(gs_chan_new(SIZE_MAX, 2) == NULL);
    CHECK_RC(gs_chan_send(NULL, &t), GS_EINVAL);
    CHECK_RC(gs_chan_recv(NULL, &t), GS_EINVAL);
    CHECK_RC(gs_chan_try_send(NULL, &t), GS_EINVAL);
    CHECK_RC(gs_chan_try_recv(NULL, &t), GS_EINVAL);
    CHECK_RC(gs_chan_recv_timeout(NULL, &t, 1), GS_EINVAL);
    CHECK_RC(gs_chan_recv_timeout(unbuf, &t, -1), GS_EINVAL);
    CHECK_RC(gs_chan_close(NULL), GS_EINVAL);
    CHECK_RC(gs_chan_free(NULL), GS_EINVAL);
    CHECK_EQ(gs_chan_len(NULL), GS_EINVAL);
    CHECK_EQ(gs_chan_cap(NULL), GS_EINVAL);
    CHECK_RC(gs_chan_send(unbuf, NULL), GS_EINVAL); /* elem_size > 0 needs a value */
    CHECK_RC(gs_select(NULL, 1, 0), GS_EINVAL);

    CHECK_ID(gs_spawn(rendezvous_receiver, NULL));
    CHECK_ID(gs_spawn(rendezvous_sender, NULL));

    full = gs_chan_new(sizeof(long), 1);
    empty = gs_chan_new(sizeof(long), 0);
    long one = 1;
    CHECK_OK(gs_chan_try_send(full, &one));
    CHECK_ID(gs_spawn(blocked_sender, (void *)2L));
    CHECK_ID(gs_spawn(blocked_receiver, NULL));
    CHECK_ID(gs_spawn(closer, NULL));

    fifo = gs_chan_new(sizeof(long), 4);
    CHECK_ID(gs_spawn(fifo_receiver, NULL));
    CHECK_ID(gs_spawn(fifo_sender, NULL));

    slow = gs_chan_new(sizeof(long), 0);
    slow_gate = gs_chan_new(0, 0);
    CHECK(slow != NULL && slow_gate != NULL);
    CHECK_ID(gs_spawn(timeout_receiver, NULL));
    CHECK_ID(gs_spawn(late_sender, NULL));

    busy = gs_chan_new(sizeof(int), 0);
    CHECK_ID(gs_spawn(busy_receiver, NULL));
    CHECK_ID(gs_spawn(busy_freer, NULL));

    CHECK_OK(gs_run());
    for (int i = 0; i < 5; i++) CHECK_OK(gs_chan_try_recv(done_ch, NULL));
    CHECK_RC(gs_chan_try_recv(done_ch, NULL), GS_EAGAIN);
    /* The buffered value of `full` is still there after close. */
    long v = 0;
    CHECK_OK(gs_chan_recv(full, &v));
    CHECK_EQ(v, 1);
    CHECK_OK(gs_chan_free(busy));
    CHECK_OK(gs_chan_free(full));
    CHECK_OK(gs_chan_free(empty));
    CHECK_OK(gs_chan_free(fifo));
    CHECK_OK(gs_chan_free(slow));
    CHECK_OK(gs_chan_free(slow_gate));
    CHECK_OK(gs_chan_free(unbuf));
    CHECK_OK(gs_chan_free(done_ch));
    printf("test_chan: ok\n");
    return 0;
}
